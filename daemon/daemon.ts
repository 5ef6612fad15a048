import { EventEmitter } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import pino, { type Logger } from 'pino';
import { ensureRuntimeImage } from '../sandbox/images.ts';
import { ensureControlNetwork, ensureNamespaceNetwork, removeNamespaceNetwork } from '../sandbox/networks.ts';
import { EngineWatch } from '../sandbox/engine.ts';
import { PeerSockets } from '../sandbox/peers.ts';
import { Pool, removeLeftovers } from '../sandbox/pool.ts';
import { AddressMap } from '../gossip/addrmap.ts';
import { Cluster } from '../gossip/cluster.ts';
import { tlsFiles } from './tls.ts';
import { buildApp } from './app.ts';
import { Directory } from './directory.ts';
import { FunctionApi } from './fnapi.ts';
import { serveClaims } from './claims.ts';
import { LocalHosts } from './hosts.ts';
import { Invocations } from './invocations.ts';
import { Jobs } from './jobs.ts';
import { Records } from './records.ts';
import { ClusterHosts } from './remote.ts';
import { ShareRunner } from './share.ts';
import { Metrics } from './metrics.ts';
import { Quota } from './quota.ts';
import { Registry } from './replication.ts';
import { ensureAdminKey } from './auth.ts';
import { BlobStore } from './blobs.ts';
import type { DaemonConfig } from './config.ts';
import type { ActivationId, FunctionName, HostId, NamespaceName } from './ids.ts';
import type { Claimant } from '../gossip/claims.ts';
import { fnKeyPrefix, Invoker } from './invoker.ts';
import { KeepAlive, PAPER } from '../sandbox/keepAlive.ts';
import { Store } from './store.ts';

// The composition root: opens the store, cleans up after a previous run,
// makes sure the runtime images and the control network exist, then serves.

export interface RunningDaemon {
  url: string;
  log: Logger;
  /** Graceful stop: refuse new work, let running activations finish (up to drainMs), remove containers. */
  stop(drainMs?: number): Promise<void>;
  /** `restart`: an admin asked for a restart in place (POST /api/v1/daemon/restart); the owner stops and re-executes */
  events: EventEmitter<{ restart: [] }>;
}

async function waitForEngine(docker: Docker, log: Logger, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await docker.ping();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`the Docker engine does not answer: ${(err as Error).message}`);
      log.warn('waiting for the Docker engine');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export async function startDaemon(config: DaemonConfig, log: Logger = pino({ level: config.logLevel })): Promise<RunningDaemon> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const hostId = config.hostId as HostId;
  const store = new Store(join(config.dataDir, 'peerless.db'));
  const blobs = new BlobStore(config.dataDir);
  ensureAdminKey(store, config.dataDir);

  const failed = store.failRunningActivations(hostId, Date.now(), 'The daemon restarted while the activation was running.');
  if (failed > 0) log.warn({ failed }, 'marked activations left running by a previous run as failed');
  const jobs = new Jobs(store);
  const failedJobs = jobs.failOpen(Date.now(), 'The daemon coordinating the job restarted while it ran.');
  if (failedJobs > 0) log.warn({ failedJobs }, 'marked jobs left running by a previous run as failed');

  const docker = new Docker({ socketPath: config.dockerSocket });
  await waitForEngine(docker, log, 30_000);
  const removed = await removeLeftovers(docker, hostId);
  if (removed > 0) log.info({ removed }, 'removed containers left by a previous run');

  const t0 = Date.now();
  const [nodejs, python] = await Promise.all([ensureRuntimeImage(docker, 'nodejs'), ensureRuntimeImage(docker, 'python')]);
  log.info({ nodejs: nodejs.tag, python: python.tag, built: nodejs.built || python.built, ms: Date.now() - t0 }, 'runtime images ready');
  const controlNetwork = await ensureControlNetwork(docker, hostId);

  const networks = new Map<string, Promise<string>>();
  const namespaceNetwork = (ns: string): Promise<string> => {
    let p = networks.get(ns);
    if (!p) {
      p = ensureNamespaceNetwork(docker, ns).then((n) => n.name);
      p.catch(() => networks.delete(ns));
      networks.set(ns, p);
    }
    return p;
  };

  // Sockets and container directories of a previous run are stale: its containers are gone.
  rmSync(config.runDir, { recursive: true, force: true });
  mkdirSync(join(config.runDir, 'slots'), { recursive: true, mode: 0o755 });
  const peers = new PeerSockets(join(config.runDir, 'peers'));
  let fnApi: FunctionApi | undefined;
  const directory = new Directory(new AddressMap(hostId, Date.now()), (ns) => fnApi!.socketPath(ns));

  const prewarmMb = config.limits.memoryMb.default;
  const pool = new Pool({
    docker,
    hostId,
    controlNetwork,
    memoryBudgetMb: config.pool.memoryBudgetMb,
    pauseGraceMs: config.pool.pauseGraceMs,
    idleTimeoutMs: config.pool.idleTimeoutMs,
    ...(config.pool.learnKeepAlive ? { keepAlive: new KeepAlive({ ...PAPER, fixedMs: config.pool.idleTimeoutMs }) } : {}),
    prewarm: [
      { image: nodejs.tag, memoryMb: prewarmMb, count: config.pool.prewarm.nodejs },
      { image: python.tag, memoryMb: prewarmMb, count: config.pool.prewarm.python },
    ],
    logLimitBytes: config.limits.logBytes,
    slotRoot: join(config.runDir, 'slots'),
    peersRoot: peers.root,
    onRemove: (dir) => directory.detach(dir),
    log,
  });
  const engine = new EngineWatch(docker, hostId, log, (e) => {
    if (e.type === 'died') pool.containerDied(e.containerId);
    else if (e.type === 'lost') pool.engineLost();
    else {
      // Networks survive a restart in the engine's own store, but a reset engine would have lost them.
      networks.clear();
      void ensureControlNetwork(docker, hostId)
        .then(() => pool.engineBack())
        .catch((err: unknown) => log.error({ err }, 'could not restore the pool after the engine came back'));
    }
  });
  const metrics = new Metrics();
  const invoker = new Invoker({
    metrics,
    store,
    blobs,
    pool,
    hostId,
    limits: config.limits,
    log,
    images: { nodejs: nodejs.tag, python: python.tag },
    namespaceNetwork,
    directory,
    ensureSocket: (ns) => fnApi!.ensureSocket(ns),
    peers,
  });
  const quota = new Quota(config.quota.invocationsPerMinute, config.quota.concurrentActivations);
  let claims: Claimant | undefined;
  const runner = new ShareRunner({ store, invoker, directory, hostId, claims: () => claims });
  const localHosts = new LocalHosts(hostId, pool, runner);
  const invocations = new Invocations({ store, pool, quota, directory, jobs, hostId, payloadBytes: config.limits.payloadBytes, image: (fn) => invoker.image(fn), log }, localHosts);
  invoker.events.on('ended', (id) => invocations.parentEnded(id));
  const records = new Records({ store, jobs, directory, invocations });
  fnApi = await FunctionApi.create({
    root: join(config.runDir, 'ns'),
    directory,
    log,
    failed: (ns, id) => jobs.failedMember(ns, id),
    jobsChanged: (l) => {
      jobs.events.on('changed', l);
      return () => jobs.events.off('changed', l);
    },
    spawn: async (r) => {
      const { job, members } = await invocations.invoke({
        namespace: r.namespace as NamespaceName,
        function: r.function as FunctionName,
        params: r.params,
        ids: r.instances,
        group: true,
        field: '/body/instances',
        queueTimeoutMs: r.queueTimeoutMs,
        restart: r.restart,
        parent: r.parent,
        detach: r.detach,
      });
      return { jobId: job?.jobId ?? null, activations: members.map(({ instance, activationId }) => ({ instance, activationId })) };
    },
  });
  const registry = new Registry(
    store,
    blobs,
    hostId,
    log,
    {
      retire: (ns, name) => pool.retire(fnKeyPrefix({ namespace: ns as NamespaceName, name: name as FunctionName })),
      forget: (ns, name) => pool.forget(fnKeyPrefix({ namespace: ns as NamespaceName, name: name as FunctionName })),
    },
    config.limits.codeBytes,
  );
  let cluster: Cluster | null = null;
  if (config.cluster.key) {
    cluster = await Cluster.start({
      ...config.cluster,
      identityFile: join(config.dataDir, 'node.key'),
      hostName: hostId,
      local: directory.map,
      load: () => invoker.running,
      freeMb: () => pool.freeMb(),
      onChange: (nss) => directory.remoteChanged(nss),
      registryDigest: () => registry.digest(),
      log,
    });
    directory.setRemote(cluster.replica);
    directory.events.on('yield', (mine, theirs) => {
      log.warn(
        { namespace: mine.namespace, instance: mine.instance, activation: mine.activation, holder: theirs.activation, holderHost: theirs.host },
        'instance ID granted twice across a partition: this instance yields it',
      );
      invoker.stop(
        mine.activation as ActivationId,
        `The instance ID ${mine.instance} was granted on both sides of a network partition; the instance started first ` +
          `(activation ${theirs.activation} on host ${theirs.host}) keeps it, so this one was stopped.`,
      );
    });
    registry.attach(cluster);
    claims = await serveClaims(cluster, directory, config.cluster.failureTimeoutMs);
    const clusterHosts = new ClusterHosts({ cluster, local: localHosts, runner, claims, store, hostId, log });
    await clusterHosts.listen();
    invocations.useHosts(clusterHosts);
    await records.serve(cluster);
  }
  const tls = await tlsFiles(config);
  if (tls) log.info({ cert: tls.certPath, selfSigned: tls.selfSigned }, 'the user API speaks HTTPS');
  const events = new EventEmitter<{ restart: [] }>();
  const app = await buildApp(
    {
      cluster,
      registry,
      invocations,
      records,
      quota,
      metrics,
      config,
      store,
      blobs,
      invoker,
      pool,
      docker,
      engine,
      hostId,
      log,
      directory,
      namespaceNetwork,
      removeNamespaceNetwork: async (ns) => {
        networks.delete(ns);
        await removeNamespaceNetwork(docker, ns);
      },
      restart: () => events.emit('restart'),
    },
    tls ? { cert: tls.cert, key: tls.key } : undefined,
  );
  const url = await app.listen({ host: config.listen.host, port: config.listen.port });
  void pool.topUp();
  log.info({ url, hostId, dataDir: config.dataDir }, 'peerless daemon listening');

  let stopping: Promise<void> | null = null;
  return {
    url,
    log,
    events,
    stop(drainMs = 30_000) {
      stopping ??= (async () => {
        log.info({ running: invoker.running, drainMs }, 'stopping: draining running activations');
        await cluster?.stop();
        await engine.stop();
        const closing = app.close();
        const drained = await invoker.drain(drainMs);
        if (!drained) log.warn({ running: invoker.running }, 'drain deadline passed; remaining activations will be failed at next start');
        await pool.close();
        await closing;
        await fnApi!.close();
        store.close();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}
