// gateway-action: the command-line entry point. Each verb lives in gateway/cli/.
import { UsageError } from './cli/args.ts';
import * as run from './cli/run.ts';
import * as daemonVerbs from './cli/daemon.ts';
import * as verify from './cli/verify.ts';
import * as replay from './cli/replay.ts';
import * as demo from './cli/demo.ts';
import * as approvals from './cli/approve.ts';
import * as report from './cli/report.ts';
import * as exec from './cli/exec.ts';
import { runInside } from './confine/inside.ts';
import { PolicyError } from './config/policy.ts';
import { VERSION } from './version.ts';
import { terminalLines } from './evidence/terminal-text.ts';

const usage = `gateway-action ${VERSION}: an ephemeral access gateway that records every command in a session log

Usage: gateway-action <verb> [options]

Verbs:
  run      --policy FILE [--log-dir DIR] -- COMMAND...   run COMMAND through the gateway
  start    --policy FILE --state-dir DIR [--log-dir DIR]  start a detached gateway
  stop     --state-dir DIR                                stop it and seal the session log
  exec     [--state-dir DIR] [--confine] -- COMMAND...    run COMMAND with its connection environment,
                                                          confined: the gateway its only way out
  pending  [--json]                                       list commands waiting for approval
  approve  ID                                             approve a held command
  deny     ID [--reason TEXT]                             deny a held command
  verify   LOG [--jwks FILE | --issuer URL] [--repository OWNER/NAME] [--workflow REF] [--sha SHA] [--json]
                                                          check a session log: chain, signatures, seal, identity
  replay   LOG [--session ID]                             the run as a terminal timeline
           LOG --play COMMAND [--speed N|max]              play a command's terminal recording
           LOG --asciicast COMMAND                         ... or write it as asciicast v2
  report   LOG -o FILE.html                               a self-contained HTML report for auditors
  demo     [--log-dir DIR]                                ten seconds of what it does: masking, a denied DELETE,
                                                          a DROP approved, the log verified, replayed, reported

\`gateway-action <verb> --help\` describes each verb.
`;

const verbs: Record<string, (argv: string[]) => Promise<number>> = {
  run: run.main,
  start: daemonVerbs.start,
  stop: daemonVerbs.stop,
  daemon: daemonVerbs.daemon,
  verify: verify.main,
  replay: replay.main,
  pending: approvals.pending,
  approve: approvals.approve,
  deny: approvals.deny,
  demo: demo.main,
  report: report.main,
  exec: exec.main,
  // The first process inside a confined command's namespaces (gateway/confine/inside.ts): not for people.
  __confined: () => runInside(),
};

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(usage);
    return verb ? 0 : 2;
  }
  if (verb === '--version') return void process.stdout.write(`${VERSION}\n`), 0;
  const fn = verbs[verb];
  if (!fn) throw new UsageError(`unknown verb "${verb}" (verbs: run, start, stop, exec, pending, approve, deny, verify, replay, report, demo; see gateway-action --help)`);
  return fn(rest);
}

main(process.argv.slice(2)).then(
  // Exit explicitly: stdout is synchronous on Linux, and nothing should linger after a verb.
  (code) => process.exit(code),
  (e: Error) => {
    const prefix = e instanceof UsageError || e instanceof PolicyError ? '' : 'error: ';
    // Messages can quote what a gateway or a log said: escaped like every other printed text.
    process.stderr.write(`gateway-action: ${prefix}${terminalLines(e.message, '')}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  },
);
