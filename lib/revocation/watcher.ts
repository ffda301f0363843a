/**
 * Every worker learns of a revocation the moment it commits: a dedicated PostgreSQL connection
 * LISTENs on `ehr_revocations` (sent by the integrations trigger in the revoking transaction) and
 * keeps each integration's status and credential generation current in memory.
 *
 * `check()` is the gate the vendor wrapper calls immediately before every request. It trusts memory
 * only while the LISTEN connection is up; when it is down (or not yet up) every call reads the row
 * from the database instead, so a lost notification can never let a revoked integration through.
 * On reconnect the memory is dropped (notifications sent while disconnected are lost).
 */
import pg from 'pg';
import { ClientIdPendingError, IntegrationRevokedError, NotFoundError } from '../errors/index.js';
import type { Queryable } from '../store/pool.js';
import { backendPid, notify, readCredentialState } from './repository.js';

export const REVOCATION_CHANNEL = 'ehr_revocations';
/**
 * Each watcher answers every notification here once its listeners have settled (lib/revocation/revoke.ts
 * waits for it).
 */
export const REVOCATION_ACK_CHANNEL = 'ehr_revocation_acks';
/** The application_name of watcher connections: revocation counts them in pg_stat_activity. */
export const WATCHER_APPLICATION_NAME = 'ehr-connectors-revocations';

export interface CredentialState {
  integrationId: string;
  tenantId: string;
  status: string;
  generation: number;
}

/** May return a promise: the watcher acknowledges the notification once every listener has settled. */
export type RevocationListener = (state: CredentialState) => void | Promise<unknown>;

export interface RevocationWatcherOptions {
  databaseUrl: string;
  /** Used for per-call reads when the LISTEN connection is down. */
  db: Queryable;
  reconnectDelayMs?: number;
  /** Longest wait for listeners (e.g. in-flight vendor requests) before acknowledging anyway. */
  listenerTimeoutMs?: number;
  onError?: (reason: string) => void;
}

export class RevocationWatcher {
  private client: pg.Client | undefined;
  private closed = false;
  private connectedFlag = false;
  private readonly states = new Map<string, CredentialState>();
  /** Bumped per integration by each notification: a DB read that raced one does not overwrite it. */
  private readonly epochs = new Map<string, number>();
  private readonly listeners = new Set<RevocationListener>();
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: RevocationWatcherOptions) {}

  get connected(): boolean {
    return this.connectedFlag;
  }

  onChange(listener: RevocationListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({
      connectionString: this.opts.databaseUrl,
      application_name: WATCHER_APPLICATION_NAME,
    });
    this.client = client;
    const lost = (reason: string): void => {
      if (this.client !== client) return;
      this.client = undefined;
      this.markDisconnected();
      this.opts.onError?.(reason);
      client.end().catch(() => undefined);
      this.scheduleReconnect();
    };
    client.on('error', (err) =>
      lost(`revocation listener connection error: ${err instanceof Error ? err.message : 'unknown'}`),
    );
    client.on('end', () => lost('revocation listener connection ended'));
    client.on('notification', (msg) => {
      if (msg.channel !== REVOCATION_CHANNEL || !msg.payload) return;
      const state = this.apply(msg.payload);
      if (state) void this.settleAndAck(client, state);
    });
    try {
      await client.connect();
      this.backendPid.set(client, await backendPid(client));
      await client.query(`LISTEN ${REVOCATION_CHANNEL}`);
      if (this.client !== client) return;
      // Whatever was cached may have changed while we were not listening.
      this.states.clear();
      this.connectedFlag = true;
    } catch (err) {
      lost(`revocation listener could not connect: ${err instanceof Error ? err.message : 'unknown'}`);
    }
  }

  private markDisconnected(): void {
    this.connectedFlag = false;
    this.states.clear();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, this.opts.reconnectDelayMs ?? 500);
    this.reconnectTimer.unref();
  }

  private apply(payload: string): CredentialState | undefined {
    let parsed: Partial<CredentialState>;
    try {
      parsed = JSON.parse(payload) as Partial<CredentialState>;
    } catch {
      return undefined;
    }
    if (
      typeof parsed.integrationId !== 'string' ||
      typeof parsed.generation !== 'number' ||
      typeof parsed.status !== 'string'
    )
      return undefined;
    const state: CredentialState = {
      integrationId: parsed.integrationId,
      tenantId: typeof parsed.tenantId === 'string' ? parsed.tenantId : '',
      status: parsed.status,
      generation: parsed.generation,
    };
    this.epochs.set(state.integrationId, (this.epochs.get(state.integrationId) ?? 0) + 1);
    this.latest.set(state.integrationId, state);
    this.states.set(state.integrationId, state);
    const pending: Array<Promise<unknown>> = [];
    for (const listener of this.listeners) {
      try {
        const result = listener(state);
        if (result) pending.push(Promise.resolve(result).catch(() => undefined));
      } catch {
        // a listener's failure must not stop the others from forgetting
      }
    }
    this.pendingListeners.set(state.integrationId, pending);
    return state;
  }

  private readonly backendPid = new WeakMap<pg.Client, number>();
  private readonly pendingListeners = new Map<string, Array<Promise<unknown>>>();
  /** The last state a notification carried, kept even while disconnected (for reads that raced it). */
  private readonly latest = new Map<string, CredentialState>();

  private async settleAndAck(client: pg.Client, state: CredentialState): Promise<void> {
    const pending = this.pendingListeners.get(state.integrationId) ?? [];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(resolve, this.opts.listenerTimeoutMs ?? 10_000);
    });
    await Promise.race([Promise.all(pending), timeout]);
    clearTimeout(timer);
    const ack = JSON.stringify({
      integrationId: state.integrationId,
      generation: state.generation,
      pid: this.backendPid.get(client),
    });
    await notify(client, REVOCATION_ACK_CHANNEL, ack).catch(() => undefined);
  }

  /**
   * The current state of an integration; throws IntegrationRevokedError unless it is active.
   * From memory only while listening; otherwise from the database, every call.
   */
  async check(integrationId: string): Promise<CredentialState> {
    const cached = this.connectedFlag ? this.states.get(integrationId) : undefined;
    const state = cached ?? (await this.read(integrationId));
    if (state.status === 'pending-client-id') throw new ClientIdPendingError(integrationId);
    if (state.status !== 'active') throw new IntegrationRevokedError(integrationId, state.status);
    return state;
  }

  private async read(integrationId: string): Promise<CredentialState> {
    const epoch = this.epochs.get(integrationId) ?? 0;
    const wasConnected = this.connectedFlag;
    const row = await readCredentialState(this.opts.db, integrationId);
    if (!row) throw new NotFoundError('integration', integrationId);
    // A notification that arrived while we read is newer than (or as new as) what we read.
    if ((this.epochs.get(integrationId) ?? 0) !== epoch) {
      const notified = this.latest.get(integrationId);
      if (notified) return notified;
    }
    const state: CredentialState = { integrationId, ...row };
    // Cache only if we listened throughout the read and no notification for it arrived meanwhile.
    if (wasConnected && this.connectedFlag && (this.epochs.get(integrationId) ?? 0) === epoch)
      this.states.set(integrationId, state);
    return state;
  }

  /** For tests: drop the LISTEN connection as a network failure would (it reconnects unless paused). */
  simulateDisconnect(options: { reconnect?: boolean } = {}): void {
    const client = this.client;
    this.client = undefined;
    this.markDisconnected();
    void client?.end().catch(() => undefined);
    if (options.reconnect !== false) this.scheduleReconnect();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    this.markDisconnected();
    await client?.end().catch(() => undefined);
  }
}
