// The GitHub Action's main step. Issue 5 builds it out (OIDC to Azure, inputs, outputs); until
// then it fails with a clear message rather than pretending to work.
process.stderr.write('gateway-action: the GitHub Action entry point is not implemented yet; use the CLI (dist/cli.js).\n');
process.exitCode = 1;
