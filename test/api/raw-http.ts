// Raw HTTP/1.1 requests over node:net, for request targets that fetch, Node's http client and curl
// would never send as written (a raw '#': they cut the fragment off or encode it).
import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  /** Lower-cased names; `date` left out, since two answers never share it. */
  headers: Record<string, string>;
  body: string;
}

/** Sends `method target` with `body` on a fresh connection and reads the answer to the end. */
export function rawRequest(base: string, method: string, target: string, body = ''): Promise<RawAnswer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `${method} ${target} HTTP/1.1\r\nhost: ${hostname}\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${method} ${target}`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        if (name !== 'date') headers[name] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine?.split(' ')[1]), headers, body: text.slice(split + 4) });
    });
  });
}
