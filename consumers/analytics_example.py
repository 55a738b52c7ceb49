"""An analytics consumer to copy: crm.events.v1 from the start into a daily DuckDB table of
contacts, complaints, survey ticks and payments, proven complete against the relay's checkpoints.

Read docs/analytics-consumer.md first. The recipe, in short:
- Own consumer group, offsets stored in the DuckDB file in the same transaction as the counts
  (Kafka's committed offsets are only a hint for lag dashboards): a crash at any point neither
  loses nor double-counts an event. On (re)assignment each partition seeks to the stored offset.
- Per partition, keep an event only if its `position` is above the last one kept (re-published
  runs only repeat events already counted), and fold it into the running digest of
  consumers/checkpoints.py. The (count, digest) at each position not yet confirmed is kept in
  `ledger`; a checkpoint confirms or refutes it (the rule of CompletenessVerifier, persisted).
- Aggregate by the business day (`time`, in the chosen time zone); money per currency, exact.
Dependencies: kafka-python, duckdb (`pip install duckdb`), orjson, and consumers/checkpoints.py.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from consumers.checkpoints import Checkpoint, Tally

log = logging.getLogger(__name__)

EVENTS_TOPIC = "crm.events.v1"
# CloudEvents types this example counts, without their ".vN" -> the daily_activity column they
# add to. Every version counts: a new class version (ContactLogged v2 sealed the topic) keeps
# the fields read here (amount, currency, ticked).
COUNTED = {"crm.ContactLogged": "contacts", "crm.ComplaintRegistered": "complaints",
           "crm.SurveyTickSet": "survey_ticks", "crm.PaymentReceived": "payments"}
COLUMNS = ("contacts", "complaints", "survey_ticks", "survey_unticked", "payments")

SCHEMA = """
CREATE TABLE IF NOT EXISTS daily_activity (
    day DATE PRIMARY KEY, contacts BIGINT NOT NULL, complaints BIGINT NOT NULL,
    survey_ticks BIGINT NOT NULL, survey_unticked BIGINT NOT NULL, payments BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS daily_payments (
    day DATE, currency VARCHAR, payments BIGINT NOT NULL, amount DECIMAL(18, 4) NOT NULL,
    PRIMARY KEY (day, currency));
CREATE TABLE IF NOT EXISTS offsets (
    topic VARCHAR, part INTEGER, next_offset BIGINT NOT NULL, PRIMARY KEY (topic, part));
CREATE TABLE IF NOT EXISTS tallies (
    part INTEGER PRIMARY KEY, last_position BIGINT NOT NULL, count BIGINT NOT NULL,
    digest VARCHAR NOT NULL, gaps BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    part INTEGER, position BIGINT, count BIGINT NOT NULL, digest VARCHAR NOT NULL,
    PRIMARY KEY (part, position));
CREATE TABLE IF NOT EXISTS checkpoints (
    part INTEGER PRIMARY KEY, topic_id VARCHAR, last_position BIGINT NOT NULL,
    count BIGINT NOT NULL, digest VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS verdicts (
    part INTEGER PRIMARY KEY, checkpoint_position BIGINT NOT NULL, status VARCHAR NOT NULL,
    detail VARCHAR);
"""


@dataclass(frozen=True)
class Verdict:
    """verified: every event up to the checkpoint, once; behind: not read that far yet;
    mismatch: something is missing or extra (detail says what)."""

    partition: int
    checkpoint_position: int
    status: str
    detail: str | None


class DailyAnalytics:
    def __init__(self, path: Path | str, bootstrap: str, *, topic: str = EVENTS_TOPIC,
                 checkpoints_topic: str | None = None, group_id: str = "crm-analytics-daily",
                 timezone: str = "UTC") -> None:
        import duckdb

        self.bootstrap = bootstrap
        self.topic = topic
        self.checkpoints_topic = checkpoints_topic or topic + ".checkpoints"
        self.group_id = group_id
        self.zone = ZoneInfo(timezone)
        self.db = duckdb.connect(str(path))
        self.db.execute(SCHEMA)
        self.consumer: Any = None

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.poll_once()
                except Exception:  # broker away, or a bug: the file is unchanged; try again
                    log.exception("analytics poll failed; retrying")
                    self._close_consumer()
                    stop.wait(1.0)
        finally:
            self.close()

    def close(self) -> None:
        self._close_consumer()
        self.db.close()

    def poll_once(self, timeout_ms: int = 200) -> int:
        """Fold one poll's records into the file in one transaction; returns the records read."""
        if self.consumer is None:
            self.consumer = self._consumer()
        batches = self.consumer.poll(timeout_ms=timeout_ms)
        read = 0
        self.db.begin()
        try:
            for tp, records in batches.items():
                if tp.topic == self.topic:
                    self._fold(tp.partition, records)
                else:
                    self._note_checkpoints(records)
                self._store_offset(tp.topic, tp.partition, records[-1].offset + 1)
                read += len(records)
            self._verify()
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise
        if batches:
            try:
                self.consumer.commit()  # a hint for lag dashboards; the file is the truth
            except Exception as error:
                log.info("offset commit failed: %s", error)
        self._rewind_past_end()
        return read

    # -- events --------------------------------------------------------------------------------

    def _fold(self, part: int, records: list[Any]) -> None:
        row = self.db.execute("SELECT last_position, count, digest, gaps FROM tallies "
                              "WHERE part = ?", [part]).fetchone()
        tally, gaps = (Tally(row[0], row[1], row[2]), row[3]) if row else (Tally(), 0)
        days: dict[date, list[int]] = defaultdict(lambda: [0] * len(COLUMNS))
        money: dict[tuple[date, str], list[Any]] = defaultdict(lambda: [0, Decimal(0)])
        ledger = []
        for record in records:
            try:
                ce = orjson.loads(record.value)
                position, previous = int(ce["position"]), int(ce.get("prevposition") or 0)
                kept = tally.last_position
                if not tally.add(position, ce["id"], ce["type"]):
                    continue  # a repeat (redelivery or a re-published run): counted already
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                # Not folded, so the next checkpoint will not verify: visible, not silent.
                log.warning("unreadable record %s/%d/%d: %s", record.topic, record.partition,
                            record.offset, error)
                continue
            if previous > kept:
                gaps += 1  # the record before this one in the partition never reached us
            ledger.append([part, position, tally.count, tally.digest])
            self._count(ce, days, money)
        if ledger:
            self.db.executemany("INSERT INTO ledger VALUES (?, ?, ?, ?)", ledger)
        self.db.execute("INSERT OR REPLACE INTO tallies VALUES (?, ?, ?, ?, ?)",
                        [part, tally.last_position, tally.count, tally.digest, gaps])
        if days:
            sets = ", ".join(f"{c} = daily_activity.{c} + excluded.{c}" for c in COLUMNS)
            self.db.executemany(
                f"INSERT INTO daily_activity VALUES (?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (day) DO UPDATE SET {sets}",
                [[day, *counts] for day, counts in sorted(days.items())])
        if money:
            self.db.executemany(
                "INSERT INTO daily_payments VALUES (?, ?, ?, ?) ON CONFLICT (day, currency) "
                "DO UPDATE SET payments = daily_payments.payments + excluded.payments, "
                "amount = daily_payments.amount + excluded.amount",
                [[day, cur, n, amount] for (day, cur), (n, amount) in sorted(money.items())])

    def _count(self, ce: dict[str, Any], days: dict[date, list[int]],
               money: dict[tuple[date, str], list[Any]]) -> None:
        column = COUNTED.get(ce["type"].rpartition(".v")[0])
        if column is None:
            return
        # The business day the event describes, not when it was recorded.
        day = datetime.fromisoformat(ce["time"]).astimezone(self.zone).date()
        days[day][COLUMNS.index(column)] += 1
        data = ce["data"]
        if column == "survey_ticks" and data["ticked"] is False:
            days[day][COLUMNS.index("survey_unticked")] += 1
        if column == "payments":
            entry = money[(day, data["currency"])]
            entry[0] += 1
            entry[1] += Decimal(data["amount"])  # a decimal string: exact, never a float

    # -- completeness --------------------------------------------------------------------------

    def _note_checkpoints(self, records: list[Any]) -> None:
        for record in records:
            try:
                checkpoint = Checkpoint.decode(record.value)
            except (ValueError, TypeError) as error:
                log.warning("not a checkpoint at offset %d: %s", record.offset, error)
                continue
            if checkpoint.topic != self.topic:
                continue  # the checkpoints topic may serve several event topics
            self.db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?)",
                            [checkpoint.partition, checkpoint.topic_id, checkpoint.last_position,
                             checkpoint.count, checkpoint.digest])

    def _verify(self) -> None:
        for part, last, count, digest in self.db.execute(
                "SELECT part, last_position, count, digest FROM checkpoints").fetchall():
            earlier = self.db.execute("SELECT checkpoint_position, status FROM verdicts "
                                      "WHERE part = ?", [part]).fetchone()
            if earlier and earlier[1] == "verified" and earlier[0] > last:
                continue  # an older claim (the relay re-publishing after broker data loss)
            status, detail = self._judge(part, last, count, digest)
            self.db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?)",
                            [part, last, status, detail])
            if status == "verified":  # confirmed: earlier snapshots are no longer needed
                self.db.execute("DELETE FROM ledger WHERE part = ? AND position < ?",
                                [part, last])

    def _judge(self, part: int, last: int, count: int, digest: str) -> tuple[str, str | None]:
        if count == 0:
            return "verified", None
        row = self.db.execute("SELECT last_position FROM tallies WHERE part = ?",
                              [part]).fetchone()
        read_up_to = row[0] if row else 0
        if read_up_to < last:
            return "behind", f"read up to position {read_up_to}, checkpoint is at {last}"
        seen = self.db.execute("SELECT count, digest FROM ledger WHERE part = ? AND "
                               "position = ?", [part, last]).fetchone()
        if seen is None:
            return "mismatch", f"position {last} was never read"
        if (seen[0], seen[1]) != (count, digest):
            return "mismatch", (f"{seen[0]} events read up to position {last}, the checkpoint "
                                f"says {count}" + (" (same count, other events)"
                                                   if seen[0] == count else ""))
        return "verified", None

    def completeness(self) -> dict[int, Verdict]:
        """The latest verdict per partition of the event topic."""
        rows = self.db.execute("SELECT part, checkpoint_position, status, detail FROM verdicts "
                               "ORDER BY part").fetchall()
        return {r[0]: Verdict(*r) for r in rows}

    def gaps(self) -> dict[int, int]:
        """Records per partition whose predecessor (`prevposition`) never arrived: an early
        sign of loss, before a checkpoint proves it."""
        return {r[0]: int(r[1]) for r in self.db.execute(
            "SELECT part, gaps FROM tallies ORDER BY part").fetchall()}

    def daily(self) -> list[tuple[Any, ...]]:
        """(day, contacts, complaints, survey_ticks, survey_unticked, payments) by day."""
        return [tuple(r) for r in self.db.execute(
            f"SELECT day, {', '.join(COLUMNS)} FROM daily_activity ORDER BY day").fetchall()]

    def daily_payments(self) -> list[tuple[Any, ...]]:
        """(day, currency, payments, amount) by day and currency."""
        return [tuple(r) for r in self.db.execute(
            "SELECT day, currency, payments, amount FROM daily_payments "
            "ORDER BY day, currency").fetchall()]

    # -- Kafka ---------------------------------------------------------------------------------

    def _consumer(self) -> Any:
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id,
            client_id=self.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            # A group join waits about half the session timeout; 6000 ms is Kafka's minimum.
            session_timeout_ms=6000, heartbeat_interval_ms=1500, fetch_max_wait_ms=100,
            max_poll_records=2000, isolation_level="read_committed",
            allow_auto_create_topics=False)
        stored = self._stored_offset

        class SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
            """Resume where the file says, not where the group's commit says."""

            def on_partitions_revoked(self, revoked: Any) -> None:
                pass

            def on_partitions_assigned(self, assigned: Any) -> None:
                for tp in assigned:
                    offset = stored(tp.topic, tp.partition)
                    if offset is None:
                        consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek(tp, offset)

        consumer.subscribe([self.topic, self.checkpoints_topic], listener=SeekToStored())
        return consumer

    def _stored_offset(self, topic: str, part: int) -> int | None:
        row = self.db.execute("SELECT next_offset FROM offsets WHERE topic = ? AND part = ?",
                              [topic, part]).fetchone()
        return None if row is None else int(row[0])

    def _store_offset(self, topic: str, part: int, offset: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO offsets VALUES (?, ?, ?)", [topic, part, offset])

    def _rewind_past_end(self) -> None:
        """A stored offset past a partition's end means the topic was re-created (the broker
        lost data): read it from its start; repeats are dropped by position."""
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is not None and self.consumer.position(tp) > high:
                log.warning("%s restarts below the stored offset: reading it again", tp)
                self.consumer.seek_to_beginning(tp)

    def _close_consumer(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception as error:
                log.info("closing the consumer: %s", error)
