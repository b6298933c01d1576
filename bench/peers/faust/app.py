"""The shadow agent written with Faust, as the original application was.

Consumes ratings {"rating": <int>, "unique_id": "<string>"} from BENCH_INPUT,
classifies them (ShaDow: multiple of 15, else Sha: of 3, else Dow: of 5, else
Incompatible) and sends {"type", "unique_id", "emit_timestamp", "rating"} to
BENCH_OUTPUT keyed by unique_id; anything it cannot decode goes to BENCH_DLQ
with the original bytes. The consumer group is the app id (BENCH_GROUP).

Faust commits an offset only after the agent has handled the event and the
producer has been flushed (Consumer._commit_offsets awaits producer.flush()),
and producer_acks=-1 makes every send wait for all in-sync replicas: the same
at-least-once contract as domination's agent.

Run: python app.py worker -l warn  (configuration from the environment).
"""

import json
import os

import faust

BROKER = os.environ.get("BENCH_BROKER", "127.0.0.1:9092")
GROUP = os.environ["BENCH_GROUP"]
INPUT = os.environ["BENCH_INPUT"]
OUTPUT = os.environ["BENCH_OUTPUT"]
DLQ = os.environ["BENCH_DLQ"]
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "4"))

app = faust.App(
    GROUP,
    broker=f"kafka://{BROKER}",
    store="memory://",
    datadir=os.environ.get("BENCH_DATADIR", "/tmp/faust-bench"),
    web_enabled=False,
    producer_acks=-1,
    topic_partitions=PARTITIONS,
    consumer_auto_offset_reset="earliest",
)

ratings = app.topic(INPUT, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw", partitions=PARTITIONS)
shadow = app.topic(OUTPUT, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw", partitions=PARTITIONS)
dlq = app.topic(DLQ, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw", partitions=1)


def classify(rating: int) -> str:
    if rating % 15 == 0:
        return "ShaDow"
    if rating % 3 == 0:
        return "Sha"
    if rating % 5 == 0:
        return "Dow"
    return "Incompatible"


@app.agent(ratings)
async def dominate(stream):
    async for event in stream.events():
        raw = event.value
        try:
            r = json.loads(raw)
            rating, uid = r["rating"], r["unique_id"]
            if type(rating) is not int or not isinstance(uid, str) or not 1 <= rating <= 100:
                raise ValueError("bad rating")
        except (ValueError, KeyError, TypeError):
            await dlq.send(key=event.key, value=raw)
            continue
        out = {"type": classify(rating), "unique_id": uid, "emit_timestamp": int(event.message.timestamp), "rating": rating}
        await shadow.send(key=uid.encode(), value=json.dumps(out, separators=(",", ":")).encode())


if __name__ == "__main__":
    app.main()
