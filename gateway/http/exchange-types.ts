// The request and response objects the HTTP adapter serves: Node's HTTP/1.1 ones and HTTP/2's
// compatibility ones share these members, so one exchange serves both.
import type http from 'node:http';
import type http2 from 'node:http2';

export type HttpRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type HttpResponse = (http.ServerResponse | http2.Http2ServerResponse) & {
  writeHead(status: number, headers?: http.OutgoingHttpHeaders): unknown;
  write(chunk: Buffer): boolean;
  end(chunk?: string | Buffer): unknown;
  destroy(err?: Error): unknown;
  writeContinue(): void;
  readonly headersSent: boolean;
};
