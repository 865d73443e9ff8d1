// The HTTP targets' profile of the shared exchange: requests read by request-facts.ts (Azure
// Resource Manager's resource from the path), refusals in ARM's error shape.
import type { ApiProfile } from './api-profile.ts';
import { sendError } from './replies.ts';
import { requestUnit } from './request-facts.ts';

export const httpApi: ApiProfile = {
  commandKind: 'http.request',
  read(method, host, path) {
    const unit = requestUnit(method, host, path);
    const resource = 'resource' in unit ? unit.resource : undefined;
    return {
      unit,
      details: resource ? { resource } : {},
      approvalLines: resource ? [`resource: ${resource.type ?? '?'}${resource.name ? ` ${resource.name}` : ''}${resource.action ? ` action ${resource.action}` : ''}`] : [],
    };
  },
  sendError,
};
