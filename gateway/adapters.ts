// The composition root: every protocol adapter the product ships, and what the evidence tools
// render each protocol's records with. Only this file (and the CLI that starts the daemon)
// names adapter folders; the core reaches them through gateway/core/adapter.ts.
