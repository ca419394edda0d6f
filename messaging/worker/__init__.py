"""The logic worker (`manage.py run_logic`): client frames from im.logic.upstream in, answers and
pushes to im.access.{node}.downstream out. See the README's "Message flow" section.

- batching.py: queues decoded messages by partition; database threads take batches bounded by count
  and by a few milliseconds;
- handlers.py: one batch of upstream envelopes -> service calls -> an Outbox (runs on the DB thread);
- routing.py: the Outbox's user-addressed frames -> one Downstream per access node (one presence query);
- runner.py: the asyncio process: NATS, the DB threads, retries, SIGTERM.
"""
