// "Recorded before forwarded", for any protocol: what carries a new command goes to its target
// only once the log writer has written the command's record, and whatever the client sends after
// it waits behind it, in order. The log is written once per event-loop turn for every session
// (SessionLogWriter.whenWritten), so a session never waits longer than the turn it is in.
import type { LogUnavailableError, SessionLogWriter } from '../evidence/log-writer.ts';

export interface ForwardTarget<T> {
  /** Sends what was held, in order. */
  write(items: T[]): void;
  /** The log failed before these were recorded: they are dropped and the session must refuse. */
  refuse(failure: LogUnavailableError): void;
  /** False once the session ended: what waits is dropped. */
  isOpen(): boolean;
}

export class ForwardAfterRecord<T> {
  private readonly writer: SessionLogWriter;
  private readonly target: ForwardTarget<T>;
  private waitingItems: T[] | null = null;

  constructor(writer: SessionLogWriter, target: ForwardTarget<T>) {
    this.writer = writer;
    this.target = target;
  }

  /** Something is waiting for the log write. */
  get waiting(): boolean {
    return this.waitingItems !== null;
  }

  /** Forwards `items`; when they carry a new command (`recorded`), once its record is written. */
  send(items: T[], recorded: boolean): void {
    if (this.waitingItems) {
      for (const i of items) this.waitingItems.push(i);
      return;
    }
    if (!recorded) return this.target.write(items);
    this.waitingItems = items;
    this.writer.whenWritten(this.written);
  }

  private readonly written = (failure: LogUnavailableError | null): void => {
    const items = this.waitingItems;
    this.waitingItems = null;
    if (!items || !this.target.isOpen()) return;
    if (failure) return this.target.refuse(failure);
    this.target.write(items);
  };
}
