// The commands a pod of the Kubernetes API stand-in "runs" for pods/exec, executed in-process:
// enough to see argv, stdin, stdout, stderr, exit codes and terminal sizes travel through a
// gateway, nothing more. Each command writes through `io` and resolves to its exit code.
//   echo ARGS...        ARGS joined by spaces, newline
//   cat                 stdin to stdout until stdin closes (the throughput benchmark's command)
//   cat FILE            a few fixed files (/etc/hostname, /etc/os-release), else exit 1
//   sh -c SCRIPT        `exit N`, or SCRIPT split on blanks and run as one of these commands
//   ls [DIR]            a fixed listing of /
//   env                 the container's environment (TERM too with a TTY)
//   true / false        exit 0 / exit 1
//   sleep N             waits N seconds (or until the client leaves)
//   stty size           "ROWS COLS" of the last resize, waiting for the first (TTY only)
//   resize-log          with a TTY: prints "COLSxROWS" for every resize until stdin closes (^D)
// Anything else: `exec: "X": executable file not found in $PATH` on stderr and exit code 127.

export interface TerminalSize { Width: number; Height: number }

export interface CommandIo {
  readonly tty: boolean;
  readonly pod: string;
  stdout(data: Buffer | string): Promise<void>;
  stderr(data: Buffer | string): Promise<void>;
  /** Consumes stdin chunk by chunk until it closes (a v5 close frame or the client leaving). */
  readStdin(onChunk: (chunk: Buffer) => Promise<void> | void): Promise<void>;
  /** The last terminal size the client sent, if any. */
  size(): TerminalSize | undefined;
  onResize(listener: (s: TerminalSize) => void): () => void;
  /** Resolves when the client has gone (so a long command can stop). */
  readonly gone: Promise<void>;
}

const FILES: Record<string, (pod: string) => string> = {
  '/etc/hostname': (pod) => `${pod}\n`,
  '/etc/os-release': () => 'PRETTY_NAME="Stand-in Linux"\nID=standin\n',
};

function firstSize(io: CommandIo): Promise<TerminalSize | undefined> {
  return new Promise((resolve) => {
    const stop = io.onResize((s) => { stop(); resolve(s); });
    void io.gone.then(() => { stop(); resolve(undefined); });
  });
}

export async function runCommand(argv: string[], io: CommandIo): Promise<number> {
  const nl = io.tty ? '\r\n' : '\n';
  const [program, ...args] = argv;
  switch (program) {
    case 'echo':
      await io.stdout(`${args.join(' ')}${nl}`);
      return 0;
    case 'cat': {
      if (args.length === 0) {
        await io.readStdin((chunk) => io.stdout(chunk));
        return 0;
      }
      let code = 0;
      for (const f of args) {
        const content = FILES[f];
        if (content) await io.stdout(content(io.pod));
        else { await io.stderr(`cat: ${f}: No such file or directory${nl}`); code = 1; }
      }
      return code;
    }
    case 'sh':
    case '/bin/sh': {
      if (args.length === 0) return interactiveShell(io);
      if (args[0] !== '-c' || args.length < 2) {
        await io.stderr(`sh: only 'sh -c SCRIPT' or an interactive sh is supported here${nl}`);
        return 2;
      }
      const script = args[1].trim();
      const exit = /^exit(?:\s+(\d+))?$/.exec(script);
      if (exit) return Number(exit[1] ?? 0) & 0xff;
      const words = script.split(/\s+/).filter(Boolean);
      return words.length === 0 ? 0 : runCommand(words, io);
    }
    case 'ls':
      await io.stdout(['bin', 'dev', 'etc', 'home', 'proc', 'root', 'tmp', 'usr', 'var', ''].join(nl));
      return 0;
    case 'env':
      await io.stdout([
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `HOSTNAME=${io.pod}`,
        ...(io.tty ? ['TERM=xterm'] : []), 'HOME=/root', '',
      ].join(nl));
      return 0;
    case 'true':
      return 0;
    case 'false':
      return 1;
    case 'sleep': {
      const seconds = Number(args[0] ?? 'x');
      if (!Number.isFinite(seconds) || seconds < 0) { await io.stderr(`sleep: invalid time interval '${args[0] ?? ''}'${nl}`); return 1; }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise((r) => { timer = setTimeout(r, seconds * 1000); }), io.gone]);
      clearTimeout(timer);
      return 0;
    }
    case 'stty': {
      // kubectl sends the first terminal size just after the stream opens: wait for it.
      const s = io.tty ? io.size() ?? await firstSize(io) : undefined;
      if (!io.tty || args[0] !== 'size' || !s) { await io.stderr(`stty: 'standard input': Inappropriate ioctl for device${nl}`); return 1; }
      await io.stdout(`${s.Height} ${s.Width}${nl}`);
      return 0;
    }
    case 'resize-log': {
      if (!io.tty) { await io.stderr(`resize-log: needs a TTY${nl}`); return 1; }
      const seen = io.size();
      if (seen) await io.stdout(`${seen.Width}x${seen.Height}${nl}`);
      const stop = io.onResize((s) => { void io.stdout(`${s.Width}x${s.Height}${nl}`); });
      await io.readStdin(() => undefined);
      stop();
      return 0;
    }
    default:
      await io.stderr(`exec: "${program ?? ''}": executable file not found in $PATH${nl}`);
      return 127;
  }
}

/**
 * `sh` with no arguments: reads lines from stdin and runs each as `sh -c LINE` would, with a `$ `
 * prompt; a terminal's echo is played back as a real tty would. `exit [N]` or the end of stdin ends it.
 */
async function interactiveShell(io: CommandIo): Promise<number> {
  const nl = io.tty ? '\r\n' : '\n';
  let line = '';
  let done: ((code: number) => void) | null = null;
  const exited = new Promise<number>((resolve) => { done = resolve; });
  let queue = Promise.resolve();
  if (io.tty) await io.stdout('$ ');
  const ended = io.readStdin((chunk) => {
    queue = queue.then(async () => {
      for (const ch of chunk.toString('utf8')) {
        if (ch !== '\r' && ch !== '\n') {
          line += ch;
          if (io.tty) await io.stdout(ch);
          continue;
        }
        if (io.tty) await io.stdout(nl);
        const script = line.trim();
        line = '';
        const exit = /^exit(?:\s+(\d+))?$/.exec(script);
        if (exit) return done?.(Number(exit[1] ?? 0) & 0xff);
        if (script) await runCommand(['sh', '-c', script], io);
        if (io.tty) await io.stdout('$ ');
      }
    });
    return queue;
  }).then(() => 0);
  return Promise.race([exited, ended]);
}
