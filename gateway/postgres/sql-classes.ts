// The vocabulary of SQL statement classes rules can name (docs/policy.md describes each).
// The PostgreSQL classifier produces only these; the policy loader rejects any other.
export const SQL_CLASSES = [
  'select', 'insert', 'update', 'delete', 'merge', 'update-without-where', 'delete-without-where',
  'ddl', 'create', 'alter', 'drop', 'truncate', 'grant', 'revoke', 'role',
  'copy', 'copy-to-program', 'copy-from-program', 'do-block', 'function-definition',
  'transaction', 'set', 'explain', 'prepare', 'execute', 'cursor', 'lock', 'listen', 'notify',
  'vacuum', 'maintenance', 'utility',
] as const;
