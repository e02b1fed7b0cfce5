"""Real concurrency (threads, each with its own database connection) on the write path."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.db import connection, connections

from linkup.actions.events import collecting_events
from linkup.actions.messages import do_send_message
from linkup.actions.rooms import do_create_room
from linkup.models import Membership, Message, Room
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
PER_THREAD = 25


def run_threads(target: Any, count: int) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def wrapper(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrapper, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a sender thread hung"
    return errors


def test_concurrent_senders_get_gap_free_unique_seqs() -> None:
    owner = make_user("owner")
    senders = [make_user(f"sender{i}") for i in range(THREADS)]
    room, _ = do_create_room(owner, "group", [s.pk for s in senders], "busy")
    client_ids = [[str(uuid.uuid4()) for _ in range(PER_THREAD)] for _ in range(THREADS)]
    first_seen: dict[str, int] = {}
    resent: dict[str, int] = {}
    lock = threading.Lock()

    def send_all(index: int) -> None:
        for client_id in client_ids[index]:
            with collecting_events():
                message, created = do_send_message(
                    senders[index], room["id"], client_id, f"m{index}"
                )
                again, created_again = do_send_message(
                    senders[index], room["id"], client_id, f"m{index}"
                )
            assert created and not created_again
            with lock:
                first_seen[client_id] = message["id"]
                resent[client_id] = again["id"]

    errors = run_threads(send_all, THREADS)
    assert not errors, errors
    total = THREADS * PER_THREAD
    seqs = list(
        Message.objects.filter(room_id=room["id"]).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(1, total + 1))
    assert Room.objects.get(pk=room["id"]).last_seq == total
    assert first_seen == resent  # every resend returned the original message
    # Each sender's own messages are in the order it sent them.
    for index, sender in enumerate(senders):
        mine = list(
            Message.objects.filter(room_id=room["id"], sender=sender)
            .order_by("seq")
            .values_list("client_id", flat=True)
        )
        assert mine == client_ids[index]
    # Sending moved each sender's markers to their last message.
    for sender in senders:
        last = Message.objects.filter(room_id=room["id"], sender=sender).order_by("-seq").first()
        membership = Membership.objects.get(room_id=room["id"], user=sender)
        assert last is not None and membership.read_seq >= last.seq


def test_concurrent_resends_of_one_client_id_store_one_message() -> None:
    owner = make_user("owner")
    room, _ = do_create_room(owner, "group", [], "solo")
    client_id = str(uuid.uuid4())
    ids: list[int] = []
    lock = threading.Lock()

    def resend(index: int) -> None:
        with collecting_events():
            message, _ = do_send_message(owner, room["id"], client_id, "same")
        with lock:
            ids.append(message["id"])

    errors = run_threads(resend, THREADS)
    assert not errors, errors
    assert len(set(ids)) == 1 and len(ids) == THREADS
    assert Message.objects.filter(room_id=room["id"]).count() == 1


def test_concurrent_direct_room_creation_yields_one_room() -> None:
    alice, bob = make_user("alice"), make_user("bob")
    results: list[int] = []
    lock = threading.Lock()

    def create(index: int) -> None:
        me, other = (alice, bob) if index % 2 else (bob, alice)
        with collecting_events():
            room, _ = do_create_room(me, "direct", [other.pk])
        with lock:
            results.append(room["id"])

    errors = run_threads(create, THREADS)
    assert not errors, errors
    assert len(set(results)) == 1
    assert Room.objects.filter(kind="direct").count() == 1
    assert connection.vendor in ("sqlite", "postgresql")
