// The one mapping from a target's name to the variable later steps find it in.

/** GATEWAY_<NAME>_URL (or another suffix): the name upper-cased, '-' to '_'. */
export function targetVariable(target: string, suffix = 'URL'): string {
  return `GATEWAY_${target.toUpperCase().replace(/-/g, '_')}_${suffix}`;
}
