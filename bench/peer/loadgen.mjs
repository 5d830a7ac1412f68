// Load generator for bench/send_path.py: seed clients (socket.io-client 4,
// websocket transport) in two-person conversations, sending with
// `send_message` at a fixed total rate and timing each receiver's
// `new_message` against the sender's emit.
//
//   node loadgen.mjs --url http://127.0.0.1:3000 --plan plan.json [--workers 2] [--acks]
//                    [--burst 1]
//
// plan.json: { "mode": "bridge" | "peer", "conversations": [[id, userA, userB], ...],
//              "tokens": { userId: jwt } }   (tokens: bridge mode only)
//
// Protocol (one JSON object per line): prints {"event":"connected",...} once
// every socket has joined its rooms; then reads phases from stdin,
// {"rate": 500, "seconds": 30, "drain": 60}, and prints {"event":"result",...}
// after each; "quit" or end of input closes the sockets and exits.
// --burst K: each sender's turn is K messages emitted back to back (the
// total rate stays the same), the case where arrival order can break.
//
// Sockets are split over worker threads by conversation, so a sender and its
// receiver share a thread and a clock. The message text carries the sender's
// index, its sequence number and the emit time.

import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

const clock = () => performance.timeOrigin + performance.now();

function parseArgs(argv) {
  const args = { workers: 2, acks: false, burst: 1, connectConcurrency: 200 };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    if (key === "--url") args.url = argv[++i];
    else if (key === "--plan") args.plan = argv[++i];
    else if (key === "--workers") args.workers = Number(argv[++i]);
    else if (key === "--acks") args.acks = true;
    else if (key === "--burst") args.burst = Math.max(1, Number(argv[++i]));
    else if (key === "--connect-concurrency") args.connectConcurrency = Number(argv[++i]);
    else throw new Error(`unknown argument ${key}`);
  }
  if (!args.url || !args.plan) throw new Error("--url and --plan are required");
  return args;
}

// ---------------------------------------------------------------- worker ----

function runWorker({ url, mode, conversations, tokens, acks, burst, connectConcurrency }) {
  const clients = [];
  for (const [conversationId, a, b] of conversations) {
    const base = clients.length;
    clients.push({ idx: base, user: a, partner: b, partnerIdx: base + 1, conversationId });
    clients.push({ idx: base + 1, user: b, partner: a, partnerIdx: base, conversationId });
  }
  let phase = null; // the running phase's counters
  let disconnects = 0;
  let connectErrors = 0;

  function onNewMessage(client, data) {
    if (phase === null) return;
    const message = data && data.message;
    if (!message || message.sender_id === client.user) return;
    const parts = String(message.content).split(":");
    if (parts[0] !== "lg" || Number(parts[1]) !== phase.id) return;
    const now = clock();
    const senderIdx = Number(parts[2]);
    const seq = Number(parts[3]);
    const sentAt = Number(parts[4]);
    const key = senderIdx * 10_000_000 + seq;
    if (phase.seen.has(key)) {
      phase.duplicates++;
      return;
    }
    phase.seen.add(key);
    phase.latencies.push(now - sentAt);
    phase.lastArrival = Math.max(phase.lastArrival, now);
    if (now <= phase.sendEnd) phase.deliveredDuringSend++;
    if (seq < client.lastSeq) phase.orderViolations++;
    else client.lastSeq = seq;
  }

  function connect(client) {
    return new Promise((resolve) => {
      const auth = mode === "bridge" ? { token: tokens[client.user] } : { userId: client.user };
      const socket = io(url, {
        auth,
        transports: ["websocket"],
        forceNew: true,
        reconnection: false,
        timeout: 60_000,
      });
      client.socket = socket;
      client.lastSeq = -1;
      const timer = setTimeout(() => done(false, "join timed out"), 120_000);
      let settled = false;
      const done = (ok, why) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!ok) {
          connectErrors++;
          if (connectErrors === 1) console.error(`connect failed: ${why}`);
        }
        resolve(ok);
      };
      socket.on("connect_error", (err) => done(false, err.message));
      socket.on("disconnect", () => disconnects++);
      socket.on("new_message", (data) => onNewMessage(client, data));
      socket.on("connect", () => {
        // As the seed client does: its user room, then the open conversation.
        socket.emit("join", client.user);
        socket.emit("join_conversation", client.conversationId, (ack) => {
          if (ack && ack.ok === false) done(false, JSON.stringify(ack));
          else done(true);
        });
      });
    });
  }

  async function connectAll() {
    let connected = 0;
    for (let i = 0; i < clients.length; i += connectConcurrency) {
      const batch = clients.slice(i, i + connectConcurrency);
      const results = await Promise.all(batch.map(connect));
      connected += results.filter(Boolean).length;
    }
    parentPort.postMessage({ type: "connected", connected, errors: connectErrors });
  }

  function runPhase({ id, rate, seconds, drain }) {
    // Every socket sends, in a shuffled round robin, at `rate` in all.
    const order = clients.map((c) => c.idx);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const seqs = new Array(clients.length).fill(0);
    for (const c of clients) c.lastSeq = -1;
    const start = clock();
    phase = {
      id,
      sent: 0,
      seen: new Set(),
      latencies: [],
      duplicates: 0,
      orderViolations: 0,
      deliveredDuringSend: 0,
      ackErrors: 0,
      firstAckError: null,
      start,
      sendEnd: start + seconds * 1000,
      lastArrival: start,
    };
    const p = phase;
    const disconnectsBefore = disconnects;
    let k = 0;
    return new Promise((resolve) => {
      const finish = () => {
        phase = null;
        resolve({
          type: "result",
          sent: p.sent,
          delivered: p.latencies.length,
          duplicates: p.duplicates,
          orderViolations: p.orderViolations,
          deliveredDuringSend: p.deliveredDuringSend,
          ackErrors: p.ackErrors,
          firstAckError: p.firstAckError,
          disconnects: disconnects - disconnectsBefore,
          start: p.start,
          sendEnd: p.sendEnd,
          lastArrival: p.lastArrival,
          latencies: Float64Array.from(p.latencies),
        });
      };
      const waitDrain = () => {
        const deadline = clock() + drain * 1000;
        let lastCount = -1;
        let lastProgress = clock();
        const check = () => {
          const now = clock();
          if (p.latencies.length !== lastCount) {
            lastCount = p.latencies.length;
            lastProgress = now;
          }
          // Done when all arrived, nothing moved for 5 s, or the drain ran out.
          if (p.latencies.length >= p.sent || now - lastProgress > 5000 || now > deadline) finish();
          else setTimeout(check, 50);
        };
        check();
      };
      const total = Math.round(seconds * rate);
      const send = (client) => {
        const seq = seqs[client.idx]++;
        const payload = {
          conversationId: client.conversationId,
          senderId: client.user,
          receiverId: client.partner,
          message: `lg:${id}:${client.idx}:${seq}:${clock().toFixed(3)}`,
          clientMessageId: `lg-${id}-${client.idx}-${seq}`,
        };
        if (acks) {
          client.socket.emit("send_message", payload, (ack) => {
            if (ack && ack.ok === false) {
              p.ackErrors++;
              p.firstAckError ??= ack.error;
            }
          });
        } else {
          client.socket.emit("send_message", payload);
        }
        p.sent++;
      };
      const tick = () => {
        const now = clock();
        const due = Math.min(Math.floor(((now - start) / 1000) * rate), total);
        while (p.sent < due) {
          const client = clients[order[k++ % order.length]];
          for (let b = 0; b < burst && p.sent < total; b++) send(client);
        }
        if (now < p.sendEnd) setTimeout(tick, 1);
        else waitDrain();
      };
      tick();
    });
  }

  parentPort.on("message", async (msg) => {
    if (msg.type === "run") {
      const result = await runPhase(msg);
      parentPort.postMessage(result, [result.latencies.buffer]);
    } else if (msg.type === "quit") {
      for (const c of clients) c.socket?.close();
      parentPort.close();
    }
  });
  connectAll();
}

// ------------------------------------------------------------------ main ----

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summarize(results, rate, seconds) {
  const sum = (key) => results.reduce((n, r) => n + r[key], 0);
  const total = results.reduce((n, r) => n + r.latencies.length, 0);
  const all = new Float64Array(total);
  let at = 0;
  for (const r of results) {
    all.set(r.latencies, at);
    at += r.latencies.length;
  }
  all.sort();
  const sent = sum("sent");
  const delivered = sum("delivered");
  const start = Math.min(...results.map((r) => r.start));
  const lastArrival = Math.max(...results.map((r) => r.lastArrival));
  const span = (lastArrival - start) / 1000;
  const deliveryRate = span > 0 ? delivered / span : 0;
  const round = (x) => (x === null ? null : Math.round(x * 100) / 100);
  return {
    event: "result",
    rate,
    seconds,
    sent,
    sent_rate: round(sent / seconds),
    delivered,
    lost: sent - delivered,
    duplicates: sum("duplicates"),
    latency_ms: {
      p50: round(percentile(all, 0.5)),
      p90: round(percentile(all, 0.9)),
      p99: round(percentile(all, 0.99)),
      max: round(all.length ? all[all.length - 1] : null),
    },
    delivery_rate: round(deliveryRate),
    delivered_while_sending_rate: round(sum("deliveredDuringSend") / seconds),
    kept_pace: sent > 0 && sent === delivered && deliveryRate >= 0.95 * (sent / seconds),
    order_violations: sum("orderViolations"),
    ack_errors: sum("ackErrors"),
    first_ack_error: results.map((r) => r.firstAckError).find((e) => e) ?? null,
    disconnects: sum("disconnects"),
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const plan = JSON.parse(readFileSync(args.plan, "utf8"));
  const workers = Math.max(1, Math.min(args.workers, plan.conversations.length));
  const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
  const threads = [];
  for (let w = 0; w < workers; w++) {
    const conversations = plan.conversations.filter((_, i) => i % workers === w);
    const tokens = {};
    if (plan.tokens) for (const [, a, b] of conversations) {
      tokens[a] = plan.tokens[a];
      tokens[b] = plan.tokens[b];
    }
    threads.push(
      new Worker(new URL(import.meta.url), {
        workerData: {
          url: args.url,
          mode: plan.mode,
          conversations,
          tokens,
          acks: args.acks,
          burst: args.burst,
          connectConcurrency: Math.max(1, Math.floor(args.connectConcurrency / workers)),
        },
      }),
    );
  }
  const nextMessage = (worker, type) =>
    new Promise((resolve, reject) => {
      const onMessage = (msg) => {
        if (msg.type === type) {
          worker.off("message", onMessage);
          worker.off("error", reject);
          resolve(msg);
        }
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
    });

  const t0 = clock();
  const connected = await Promise.all(threads.map((t) => nextMessage(t, "connected")));
  emit({
    event: "connected",
    sockets: plan.conversations.length * 2,
    connected: connected.reduce((n, c) => n + c.connected, 0),
    errors: connected.reduce((n, c) => n + c.errors, 0),
    seconds: Math.round(clock() - t0) / 1000,
  });

  let phaseId = 0;
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const text = line.trim();
    if (!text) continue;
    if (text === "quit") break;
    const { rate, seconds, drain = 60 } = JSON.parse(text);
    phaseId++;
    const pending = threads.map((t) => nextMessage(t, "result"));
    for (const t of threads) {
      t.postMessage({ type: "run", id: phaseId, rate: rate / workers, seconds, drain });
    }
    emit(summarize(await Promise.all(pending), rate, seconds));
  }
  for (const t of threads) t.postMessage({ type: "quit" });
  await Promise.all(threads.map((t) => new Promise((resolve) => t.once("exit", resolve))));
}

if (isMainThread) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  runWorker(workerData);
}
