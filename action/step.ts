// What the action's main and post steps talk to, as one object: the step's environment, its
// inputs and saved state, and where outputs, state, exported variables, masks and messages go.
// runnerStep() is the runner's, through @actions/core; a test passes its own and reads what
// run() did (test/e2e/action-run.test.ts), as GitHub's typescript-action template tests run().
import * as core from '@actions/core';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { terminalLines } from '../gateway/evidence/terminal-text.ts';

export interface Step {
  /**
   * The step's environment, as the action's own code reads it. The toolkit's libraries read
   * process.env themselves: the event context (@actions/github), the artifact client and the
   * job summary.
   */
  env: NodeJS.ProcessEnv;
  /** An input of action.yml, trimmed; '' when not given. */
  input(name: string): string;
  /** What main saved for post; '' when nothing was. */
  state(name: string): string;
  saveState(name: string, value: string): void;
  setOutput(name: string, value: string): void;
  /** A variable for the later steps of the job. */
  exportVariable(name: string, value: string): void;
  /** A directory put ahead of PATH for the later steps of the job. */
  addPath(dir: string): void;
  /** A value the runner masks in every later line of the job's log. */
  setSecret(value: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** Text the action did not write (the daemon's output quotes clients and servers), in a group, unable to issue workflow commands. */
  untrusted(title: string, text: string): void;
  /** Fails the step with this message (the step goes on to its end). */
  setFailed(message: string): void;
}

export function runnerStep(): Step {
  return {
    env: process.env,
    input: (name) => core.getInput(name),
    state: (name) => core.getState(name),
    saveState: (name, value) => core.saveState(name, value),
    setOutput: (name, value) => core.setOutput(name, value),
    exportVariable: (name, value) => core.exportVariable(name, value),
    addPath: (dir) => core.addPath(dir),
    setSecret: (value) => core.setSecret(value),
    info: (message) => core.info(message),
    warning: (message) => core.warning(message),
    error: (message) => core.error(message),
    untrusted(title, text) {
      // Workflow commands are switched off by an unguessable token, so a `::` line inside the
      // text cannot set outputs, add masks or stop commands; terminal controls are escaped.
      const token = randomBytes(16).toString('hex');
      core.startGroup(title);
      process.stdout.write(`::stop-commands::${token}${os.EOL}`);
      core.info(terminalLines(text, '  '));
      process.stdout.write(`::${token}::${os.EOL}`);
      core.endGroup();
    },
    setFailed: (message) => core.setFailed(message),
  };
}
