import http from 'node:http';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { RUNTIME_USER } from './images.ts';
import { PEERS_MOUNT } from './peers.ts';
import { LABEL, MANAGED_BY } from './labels.ts';
import { LogCollector } from './logs.ts';

// One action container: created hardened, attached to the control bridge and
// its namespace network, reached over HTTP on its control address.

export const PROXY_PORT = 8080;
// Generous: with a couple of hundred containers starting on two cores a proxy can take tens of seconds to
// listen. A container that dies meanwhile is noticed sooner, and the caller's signal bounds the wait too.
const PROXY_START_MS = 120_000;
// Kept-alive connections, as many to a container as it runs instances at once (its function's concurrency).
const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000 });

export interface ContainerSpec {
  image: string;
  memoryMb: number;
  hostId: string;
  controlNetwork: string;
  /** null for a prewarmed container, which joins its namespace when first used */
  namespaceNetwork: string | null;
  labels: Record<string, string>;
  logLimitBytes: number;
  /** host directory mounted read-only at /peerless (address map file, function API socket) */
  slotDir: string;
  /** host directory of the co-located fast path, mounted at /peerless-peers (see peers.ts) */
  peersRoot?: string;
}

export interface ProxyResponse {
  status: number;
  body: Buffer;
  /** the body was longer than the limit and was cut */
  truncated: boolean;
}

export class ContainerGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContainerGoneError';
  }
}

let counter = 0;

export class ActionContainer {
  readonly id: string;
  /** address on the control bridge, where the daemon reaches the proxy */
  readonly ip: string;
  /** address on the namespace's network, where other instances reach it */
  nsIp: string | null;
  readonly logs: LogCollector;
  private readonly handle: Docker.Container;
  private readonly docker: Docker;

  private constructor(docker: Docker, handle: Docker.Container, ip: string, nsIp: string | null, logs: LogCollector) {
    this.docker = docker;
    this.handle = handle;
    this.id = handle.id;
    this.ip = ip;
    this.nsIp = nsIp;
    this.logs = logs;
  }

  static async create(docker: Docker, spec: ContainerSpec, signal?: AbortSignal): Promise<ActionContainer> {
    const name = `peerless-${spec.hostId}-${process.pid.toString(36)}-${(counter++).toString(36)}-${Date.now().toString(36)}`;
    const bytes = spec.memoryMb * 1024 * 1024;
    const handle = await docker.createContainer({
      name,
      Image: spec.image,
      // Every image, ours or a user's, runs as a non-root user with a read-only root.
      User: RUNTIME_USER,
      // OpenWhisk's own runtime images take overlapping /run calls only with this set. The pool sends them only
      // to containers of functions whose limits.concurrency allows it; one at a time to all others.
      Env: ['__OW_ALLOW_CONCURRENT=true'],
      Labels: { [LABEL.managedBy]: MANAGED_BY, [LABEL.host]: spec.hostId, ...spec.labels },
      HostConfig: {
        NetworkMode: spec.controlNetwork,
        Memory: bytes,
        MemorySwap: bytes,
        PidsLimit: 512,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        ReadonlyRootfs: true,
        Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=512m,mode=1777' },
        LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
        Binds: [`${spec.slotDir}:/peerless:ro`, ...(spec.peersRoot ? [`${spec.peersRoot}:${PEERS_MOUNT}`] : [])],
      },
    });
    try {
      if (spec.namespaceNetwork) await docker.getNetwork(spec.namespaceNetwork).connect({ Container: handle.id });
      const stream = await handle.attach({ stream: true, stdout: true, stderr: true });
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      docker.modem.demuxStream(stream, stdout, stderr);
      const logs = new LogCollector(stdout, stderr, spec.logLimitBytes);
      await handle.start();
      const info = await handle.inspect();
      const ip = info.NetworkSettings.Networks[spec.controlNetwork]?.IPAddress;
      if (!ip) throw new ContainerGoneError(`container has no address on ${spec.controlNetwork}`);
      const nsIp = spec.namespaceNetwork ? (info.NetworkSettings.Networks[spec.namespaceNetwork]?.IPAddress ?? null) : null;
      const c = new ActionContainer(docker, handle, ip, nsIp, logs);
      await c.waitForProxy(PROXY_START_MS, signal);
      return c;
    } catch (e) {
      await handle.remove({ force: true }).catch(() => undefined);
      throw e;
    }
  }

  /** The proxy is up once its port accepts a connection. */
  private async waitForProxy(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastCheck = Date.now();
    for (let delay = 2; ; delay = Math.min(delay * 2, 20)) {
      signal?.throwIfAborted();
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(PROXY_PORT, this.ip);
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > deadline) throw new ContainerGoneError('the action proxy did not start listening');
      // Ask the engine whether the container died only now and then: dozens of containers starting
      // at once would otherwise flood it with inspections and slow every one of them down.
      if (Date.now() - lastCheck > 500) {
        lastCheck = Date.now();
        const st = await this.handle.inspect().catch(() => undefined);
        if (!st?.State.Running) throw new ContainerGoneError('the action container exited before its proxy started');
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** POST a JSON body to the proxy; the response body is cut at `maxBytes`. */
  post(path: '/init' | '/run', body: unknown, maxBytes: number, signal: AbortSignal): Promise<ProxyResponse> {
    const payload = Buffer.from(JSON.stringify(body));
    return new Promise<ProxyResponse>((resolve, reject) => {
      const req = http.request(
        {
          host: this.ip,
          port: PROXY_PORT,
          method: 'POST',
          path,
          agent,
          headers: { 'content-type': 'application/json', 'content-length': payload.length },
          signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          let truncated = false;
          res.on('data', (c: Buffer) => {
            if (truncated) return;
            size += c.length;
            if (size > maxBytes) {
              truncated = true;
              res.destroy();
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), truncated: true });
            } else chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), truncated }));
          res.on('error', (e) => (truncated ? undefined : reject(e)));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  async pause(): Promise<void> {
    await this.handle.pause();
  }
  async unpause(): Promise<void> {
    await this.handle.unpause();
  }
  async joinNetwork(network: string): Promise<void> {
    await this.docker.getNetwork(network).connect({ Container: this.id });
    this.nsIp = (await this.handle.inspect()).NetworkSettings.Networks[network]?.IPAddress ?? null;
  }
  /** Why the container stopped serving, if it did: OOM, or it exited; `engine: false` when the engine did not answer. */
  async state(): Promise<{ engine: boolean; running: boolean; oomKilled: boolean; exitCode: number }> {
    try {
      const st = (await this.handle.inspect()).State;
      return { engine: true, running: st.Running, oomKilled: st.OOMKilled, exitCode: st.ExitCode };
    } catch (e) {
      // 404: removed from outside, which the engine answered; anything else: the engine is gone.
      return { engine: (e as { statusCode?: number }).statusCode === 404, running: false, oomKilled: false, exitCode: -1 };
    }
  }
  async remove(): Promise<void> {
    await this.handle.remove({ force: true }).catch(() => undefined);
  }
}
