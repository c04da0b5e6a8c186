// The live connection to /api/ws (frames: DESIGN.md "Websocket frames").
//
// A browser cannot put a token on a websocket's headers, so the first frame authenticates:
// {"op":"auth","token":…}. Pages subscribe to topics through subscribe(); the socket holds
// the union of their topics. When it drops, it reconnects with exponential backoff and jitter
// (0.5 s doubling to 30 s), subscribes again, and the server's snapshots bring every page back
// to the current state; pages that also hold REST data get an onResync call to refetch it.
// Subscriptions ask for batch frames ({"type":"batch","events":[…]}: one frame per sampling
// tick instead of one per server); each event in one keeps its own topic and seq.

const BACKOFF_MIN = 500;
const BACKOFF_MAX = 30_000;
const PING_EVERY = 20_000; // a frame (even an ack) must arrive within two of these
const ALL_SERVERS = "servers.*.metrics";
const SERVER_TOPIC = /^servers\.[^.]+\.metrics$/;

function matches(wanted, topic) {
  return wanted === topic || (wanted === ALL_SERVERS && SERVER_TOPIC.test(topic));
}

export class Live {
  /** token: the credential; onState({state, detail, role}) tells the header what is going on. */
  constructor(token, onState) {
    this.token = token;
    this.onState = onState;
    this.role = null;
    this.subs = new Set(); // {topics, onFrame, onResync}
    this.seq = new Map(); // topic -> last seq seen: drops replays after a reconnect
    this.ws = null;
    this.attempt = 0;
    this.connects = 0;
    this.stopped = true;
    this.timer = null;
    this.lastFrame = 0;
  }

  start() {
    this.stopped = false;
    this.connect();
    this.pinger = setInterval(() => this.ping(), PING_EVERY);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    this.ws?.close(1000, "signed out");
    this.ws = null;
  }

  /** Follow topics; onFrame(frame) for each snapshot/event. Returns the unsubscribe function. */
  subscribe(topics, onFrame, onResync) {
    const sub = {topics, onFrame, onResync};
    const fresh = topics.filter((t) => !this.topics().has(t));
    this.subs.add(sub);
    if (fresh.length) this.send({op: "subscribe", topics: fresh, batch: true});
    return () => {
      this.subs.delete(sub);
      const left = this.topics();
      const gone = topics.filter((t) => !left.has(t));
      if (gone.length) {
        this.send({op: "unsubscribe", topics: gone});
        for (const t of gone) this.seq.delete(t);
      }
    };
  }

  topics() {
    const all = new Set();
    for (const sub of this.subs) for (const t of sub.topics) all.add(t);
    return all;
  }

  send(frame) {
    if (this.ws?.readyState === WebSocket.OPEN && this.role) this.ws.send(JSON.stringify(frame));
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/api/ws`);
    this.ws = ws;
    this.role = null;
    this.onState({state: "connecting"});
    ws.addEventListener("open", () => {
      this.lastFrame = Date.now();
      ws.send(JSON.stringify({op: "auth", token: this.token}));
    });
    ws.addEventListener("message", (msg) => this.receive(ws, msg.data));
    ws.addEventListener("close", (ev) => this.closed(ws, ev));
  }

  receive(ws, text) {
    if (ws !== this.ws) return;
    this.lastFrame = Date.now();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === "ack" && frame.data?.op === "auth") {
      this.authenticated(frame.data.role);
      return;
    }
    if (frame.type === "batch") {
      for (const event of frame.events ?? []) this.dispatch(event);
      return;
    }
    if (frame.type !== "snapshot" && frame.type !== "event") {
      if (frame.type === "error") console.warn("live:", frame.data?.message, frame.topic ?? "");
      return;
    }
    this.dispatch(frame);
  }

  /** One snapshot or event frame (alone or from a batch) to the pages that follow its topic. */
  dispatch(frame) {
    const last = this.seq.get(frame.topic);
    if (frame.type === "event" && last != null && frame.seq <= last) return;
    if (frame.seq != null) this.seq.set(frame.topic, frame.seq);
    for (const sub of [...this.subs]) {
      if (sub.topics.some((t) => matches(t, frame.topic))) {
        try {
          sub.onFrame(frame);
        } catch (err) {
          console.error("live handler failed", err);
        }
      }
    }
  }

  authenticated(role) {
    this.role = role;
    this.attempt = 0;
    this.connects += 1;
    this.onState({state: "live", role});
    const topics = [...this.topics()];
    if (topics.length) this.send({op: "subscribe", topics, batch: true});
    if (this.connects > 1) for (const sub of [...this.subs]) sub.onResync?.();
  }

  closed(ws, ev) {
    if (ws !== this.ws || this.stopped) return;
    this.role = null;
    if (ev.code === 4401 || ev.code === 4403) {
      this.stopped = true;
      this.onState({state: "refused", detail: ev.reason || "the token was refused"});
      return;
    }
    const delay = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt += 1;
    this.onState({state: "offline", detail: Math.ceil(delay / 1000)});
    this.timer = setTimeout(() => this.connect(), delay);
  }

  ping() {
    if (this.stopped || this.ws?.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastFrame > 2 * PING_EVERY) {
      this.ws.close(4000, "no frames"); // a half-open connection: start over
      return;
    }
    this.send({op: "ping"});
  }
}
