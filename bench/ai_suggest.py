"""AI suggestions: what AI costs inbound processing, and the local knowledge base at 10,000 entries.

    scripts/with-services.sh .venv/bin/python bench/ai_suggest.py [--messages N] [--entries N] [--queries N]

1. Inbound: stores N inbound WhatsApp texts through messaging.inbound (claim in DynamoDB, the
   transaction, the AI hook) with AI switched off and on, alternating every 10 messages so the
   machine's drift hits both alike. "Stored" is the moment the inbound transaction commits (the
   message is durable); with AI on, the AI task is queued on the AI queue (SQS) only after that.
   Target: AI adds no latency to storage. Measured directly — the AI hook's own time inside the
   transaction (p95 under 0.1 ms) — and as the median storage time with AI on vs off (within 10 %
   or 1 ms; the p95 comparison is printed too, but on a loaded machine it is mostly noise).
2. Knowledge base: loads N entries (default 10,000), builds the BM25 index once, then times
   knowledge_best() for realistic customer questions (the index version query included).
   Target: p95 < 50 ms.

Measured 2026-12-05 on the shared 2-CPU machine at load average ~10 (PostgreSQL, moto_server):
AI hook inside the transaction 25 µs median / 42 µs p95; stored (committed) 50.2 ms median with AI
off, 53.4 ms with AI on (1.06; p95 125 vs 120 ms). After the commit, queuing the AI task (switch
check + one SQS SendMessage to moto) takes 34 ms median / 93 ms p95: the inbound task runs that much
longer, but the message is durable before it starts. Local knowledge base at 10,000 entries: index
built in 1.06 s once; knowledge_best 8.6 ms median, 16.6 ms p95 (target 50 ms, ratio 0.33).
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from datetime import UTC, datetime

from contacts_common import drop_database, summary, use_fresh_database

DB_NAME = "wecare_bench_ai"
KB_TARGET_MS = 50.0
STORE_TOLERANCE = 1.10
STORE_SLACK_MS = 1.0
HOOK_TARGET_MS = 0.1
BLOCK = 10

PRODUCTS = [
    "kurta", "saree", "lehenga", "sherwani", "dupatta", "sandals", "sneakers", "backpack", "wallet", "watch",
    "earrings", "bangles", "necklace", "perfume", "sunglasses", "jacket", "hoodie", "jeans", "blazer", "scarf",
    "mixer", "kettle", "toaster", "blender", "cooker", "tiffin", "bottle", "mattress", "pillow", "curtains",
    "lamp", "rug", "sofa", "chair", "table", "shelf", "phone", "charger", "earphones", "speaker",
]  # fmt: skip
COLOURS = ["red", "blue", "green", "black", "white", "maroon", "saffron", "teal", "ivory", "mustard",
           "navy", "olive", "peach", "silver", "golden"]  # fmt: skip
CITIES = ["Mumbai", "Delhi", "Bengaluru", "Chennai", "Kolkata", "Pune", "Hyderabad", "Jaipur", "Kochi", "Lucknow",
          "Indore", "Surat", "Nagpur", "Patna", "Bhopal", "Goa", "Mysuru", "Madurai", "Agra", "Shimla"]  # fmt: skip
QUESTIONS = [
    ("How long does delivery of the {c} {p} to {city} take?", "The {c} {p} reaches {city} in {n} working days."),
    ("Can I return the {c} {p} bought in {city}?", "Yes, the {c} {p} can be returned within {n} days in {city}."),
    ("Is the {c} {p} in stock at the {city} store?", "The {city} store has {n} of the {c} {p} today."),
    ("What is the warranty on the {c} {p}?", "The {c} {p} has a {n}-month warranty, {city} service centre."),
    ("Do you offer cash on delivery for the {c} {p} in {city}?", "Cash on delivery for the {c} {p}: up to {n}000 INR."),
]


def knowledge_entries(count: int, rng: random.Random) -> list[tuple[str, str, str]]:
    seen, entries = set(), []
    while len(entries) < count:
        p, c, city = rng.choice(PRODUCTS), rng.choice(COLOURS), rng.choice(CITIES)
        q_template, a_template = rng.choice(QUESTIONS)
        question = q_template.format(p=p, c=c, city=city)
        if question in seen:
            question = f"{question} (variant {len(entries)})"
        seen.add(question)
        entries.append((question, a_template.format(p=p, c=c, city=city, n=rng.randint(2, 30)), f"{p}, {city}"))
    return entries


def customer_questions(count: int, rng: random.Random) -> list[str]:
    """How customers write: lower case, extra words, sometimes nothing the KB knows."""
    openers = ["hi", "hello team", "namaste,", "good morning", "hey", ""]
    texts = []
    for i in range(count):
        if i % 10 == 9:
            texts.append(f"{rng.choice(openers)} my parcel number is {rng.randint(10**6, 10**7)} where is it")
            continue
        p, c, city = rng.choice(PRODUCTS), rng.choice(COLOURS), rng.choice(CITIES)
        q_template, _ = rng.choice(QUESTIONS)
        texts.append(f"{rng.choice(openers)} {q_template.format(p=p, c=c, city=city).lower()} please reply")
    return texts


def bench_knowledge_base(entries: int, queries: int) -> dict:
    from automation.knowledge import knowledge_best, knowledge_index
    from automation.models import KnowledgeEntry

    rng = random.Random(16)
    rows = knowledge_entries(entries, rng)
    started = time.perf_counter()
    KnowledgeEntry.objects.bulk_create(
        (KnowledgeEntry(question=q, answer=a, tags=t) for q, a, t in rows), batch_size=2000
    )
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    knowledge_index()  # the first suggestion after a change builds the index; later ones reuse it
    build_s = time.perf_counter() - started
    texts = customer_questions(queries, rng)
    timings, answered = [], 0
    for text in texts:
        t0 = time.perf_counter()
        hit = knowledge_best(text)
        timings.append((time.perf_counter() - t0) * 1000)
        answered += hit is not None
    median, p95 = summary(timings)
    return {"load_s": load_s, "build_s": build_s, "median": median, "p95": p95, "answered": answered, "n": queries}


def _raw_text(wa_id: str, text: str) -> dict:
    return {
        "id": f"wamid.bench-{uuid.uuid4().hex}",
        "from": wa_id,
        "timestamp": str(int(datetime.now(UTC).timestamp())),
        "type": "text",
        "text": {"body": text},
    }


def bench_inbound(messages: int) -> dict:
    from django.conf import settings
    from django.db import connection

    from automation import services
    from automation.models import AIConfig
    from messaging.inbound import messages as inbound_messages
    from messaging.inbound.messages import inbound_message_receive

    settings.INBOUND_MARK_AS_READ = settings.INBOUND_REACT_THUMBS_UP = False
    receiving = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    services.ai_config()
    committed: list[float] = []
    original_hooks = connection.run_and_clear_commit_hooks

    def commit_seen():
        committed.append(time.perf_counter())  # the transaction has just committed: the message is stored
        return original_hooks()

    connection.run_and_clear_commit_hooks = commit_seen
    enqueues: dict[str, list[float]] = {"off": [], "on": []}
    current = ["off"]
    original_enqueue = services.ai_suggestion_enqueue

    def timed_enqueue(*args):
        t0 = time.perf_counter()
        original_enqueue(*args)
        enqueues[current[0]].append((time.perf_counter() - t0) * 1000)

    services.ai_suggestion_enqueue = timed_enqueue
    hook_ms: list[float] = []
    original_hook = inbound_messages.ai_on_inbound

    def timed_hook(message):
        t0 = time.perf_counter()
        original_hook(message)
        hook_ms.append((time.perf_counter() - t0) * 1000)

    inbound_messages.ai_on_inbound = timed_hook
    results = {"off": {"store": [], "total": []}, "on": {"store": [], "total": []}}
    rounds = max(1, messages // BLOCK)
    # Warm-up: connections, the claim table, the SQS client.
    for _ in range(10):
        inbound_message_receive(raw=_raw_text("919800000000", "warm up"), receiving=receiving, sender_name="Warm")
    enqueues["off"].clear()
    hook_ms.clear()
    for _ in range(rounds):
        for mode in ("off", "on"):
            current[0] = mode
            AIConfig.objects.filter(pk=1).update(enabled=mode == "on")
            for i in range(BLOCK):
                raw = _raw_text(f"9198{random.randint(10**7, 10**8 - 1)}", f"What are your opening hours? {i}")
                committed.clear()
                t0 = time.perf_counter()
                inbound_message_receive(raw=raw, receiving=receiving, sender_name="Bench")
                t1 = time.perf_counter()
                results[mode]["store"].append((committed[0] - t0) * 1000)
                results[mode]["total"].append((t1 - t0) * 1000)
    connection.run_and_clear_commit_hooks = original_hooks
    services.ai_suggestion_enqueue = original_enqueue
    inbound_messages.ai_on_inbound = original_hook
    out = {mode: {k: summary(v) for k, v in parts.items()} for mode, parts in results.items()}
    out["enqueue"] = {mode: summary(v) for mode, v in enqueues.items()}
    out["hook"] = summary(hook_ms)
    out["n"] = BLOCK * rounds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300, help="inbound messages per mode (AI off / on)")
    parser.add_argument("--entries", type=int, default=10_000, help="knowledge-base entries")
    parser.add_argument("--queries", type=int, default=500, help="suggestions to time")
    args = parser.parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    server = use_fresh_database(DB_NAME)
    try:
        import io

        from django.core.management import call_command

        call_command("bootstrap_aws", stdout=io.StringIO())
        load = os.getloadavg()
        print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

        inbound = bench_inbound(args.messages)
        print(f"\ninbound WhatsApp text, {inbound['n']} per mode, times in ms (median / p95):")
        for mode in ("off", "on"):
            store, total = inbound[mode]["store"], inbound[mode]["total"]
            print(f"  AI {mode:<3}  stored (committed) {store[0]:6.2f} / {store[1]:6.2f}"
                  f"   whole call {total[0]:6.2f} / {total[1]:6.2f}")  # fmt: skip
        on_q, off_q = inbound["enqueue"]["on"], inbound["enqueue"]["off"]
        print(f"  after the commit: AI on, switch check + SQS send of the task {on_q[0]:.2f} / {on_q[1]:.2f};"
              f" AI off, switch check only {off_q[0]:.2f} / {off_q[1]:.2f}")  # fmt: skip
        hook = inbound["hook"]
        hook_ok = hook[1] < HOOK_TARGET_MS
        print(f"  the AI hook inside the inbound transaction: median {hook[0] * 1000:.1f} µs, p95 "
              f"{hook[1] * 1000:.1f} µs (target p95 < {HOOK_TARGET_MS * 1000:.0f} µs, ratio "
              f"{hook[1] / HOOK_TARGET_MS:.2f}): {'met' if hook_ok else 'MISSED'}")  # fmt: skip
        off_med, on_med = inbound["off"]["store"][0], inbound["on"]["store"][0]
        off_p95, on_p95 = inbound["off"]["store"][1], inbound["on"]["store"][1]
        store_ratio = on_med / off_med if off_med else 1.0
        store_ok = on_med <= off_med * STORE_TOLERANCE or on_med - off_med <= STORE_SLACK_MS
        print(f"  storage median AI on / AI off = {store_ratio:.2f} (within {STORE_TOLERANCE:.2f} or "
              f"{STORE_SLACK_MS:.0f} ms): {'met' if store_ok else 'MISSED'}; p95 on / off = "
              f"{on_p95 / off_p95 if off_p95 else 1.0:.2f}")  # fmt: skip

        kb = bench_knowledge_base(args.entries, args.queries)
        print(f"\nlocal knowledge base, {args.entries} entries: loaded in {kb['load_s']:.1f} s, "
              f"index built in {kb['build_s'] * 1000:.0f} ms")  # fmt: skip
        print(f"  knowledge_best over {kb['n']} questions: median {kb['median']:.2f} ms, p95 {kb['p95']:.2f} ms "
              f"({kb['answered']} answered above the threshold)")  # fmt: skip
        kb_ratio = kb["p95"] / KB_TARGET_MS
        kb_ok = kb["p95"] < KB_TARGET_MS
        print(
            f"  p95 / target = {kb['p95']:.2f} / {KB_TARGET_MS:.0f} ms = {kb_ratio:.2f}: {'met' if kb_ok else 'MISSED'}"
        )
        print(
            f"RESULT ai_suggest kb_entries={args.entries} kb_p95_ms={kb['p95']:.2f} kb_target_ms={KB_TARGET_MS:.0f} "
            f"kb_ratio={kb_ratio:.2f} hook_p95_us={hook[1] * 1000:.1f} store_median_off_ms={off_med:.2f} "
            f"store_median_on_ms={on_med:.2f} store_ratio={store_ratio:.2f} store_p95_off_ms={off_p95:.2f} "
            f"store_p95_on_ms={on_p95:.2f} {'PASS' if kb_ok and store_ok and hook_ok else 'FAIL'}"
        )
    finally:
        drop_database(server, DB_NAME)


if __name__ == "__main__":
    main()
