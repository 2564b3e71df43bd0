"""Sessions as they complete: :func:`iter_sessions` over a live or long capture."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import numbers
import time

import numpy as np

from sklearn_flowspectrum._capture import decode_batch, open_capture
from sklearn_flowspectrum._growing import GrowingArray, GrowingRows
from sklearn_flowspectrum._loops import SessionIndex
from sklearn_flowspectrum._sessions import (
    KEEP_BYTES,
    CaptureEntry,
    SessionBuilder,
    assemble_table,
    check_timeouts,
    gc_paused,
    take_rows,
)
from sklearn_flowspectrum._sources import source_name

__all__ = ["iter_sessions"]

_EMIT = ("end", "image")
# A stream that keeps the reader busy still hands its finished sessions on
# at least this often (seconds of wall-clock time).
_MAX_HOLD = 0.2


def _kept(grow, idx):
    """A copy of ``grow`` holding only the entries ``idx`` (renumbered)."""
    if isinstance(grow, GrowingRows):
        new = GrowingRows(grow.a.shape[1], grow.a.dtype, grow.fill)
    else:
        new = GrowingArray(grow.a.dtype, grow.fill)
    new.ensure(len(idx))
    new.a[: len(idx)] = grow.a[idx]
    return new


class _StreamingBuilder(SessionBuilder):
    """The fast builder, plus handing on finished sessions and forgetting them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.serial = GrowingArray(np.int64, -1)  # the session's number in the capture
        self.emitted = GrowingArray(bool, False)
        self.n_serial = 0
        self.now = None  # the latest capture time seen

    def add(self, batch, dec):
        n_before = self.n
        super().add(batch, dec)
        if self.n > n_before:
            for g in (self.serial, self.emitted):
                g.ensure(self.n)
            self.serial.a[n_before : self.n] = np.arange(
                self.n_serial, self.n_serial + self.n - n_before
            )
            self.n_serial += self.n - n_before
        if len(batch.ts_ns):
            latest = int(batch.ts_ns.max())
            self.now = latest if self.now is None else max(self.now, latest)

    def ended(self, at_end):
        """Sessions that can receive no more packets (a bool mask)."""
        n = self.n
        if at_end:
            return np.ones(n, dtype=bool)
        if self.timeouts is None:  # a 5-tuple may always come back
            return np.zeros(n, dtype=bool)
        tid = self.session_tuple.a[:n]
        # Cut by a timeout: the 5-tuple has a newer session.
        out = self.tuple_session.a[tid] != np.arange(n)
        idle = self.timeouts[0]
        if idle is not None and self.now is not None:
            out |= self.now - self.tuple_last_ts.a[tid] > idle
        return out

    def _drop_frames(self, renum):
        """Keep the frames of the sessions still to be handed on, renumbered
        by ``renum`` (-1: forgotten)."""
        if not self.kept_gid:
            return
        gid = renum[np.concatenate(self.kept_gid)]
        live = gid >= 0
        live[live] = ~self.emitted.a[gid[live]]
        self.kept_gid = [gid[live]]
        self.kept_frames = [f for f, k in zip(self.kept_frames, live.tolist()) if k]
        self.kept_ts = [np.concatenate(self.kept_ts)[live]]
        self.kept_len = [np.concatenate(self.kept_len)[live]]

    def split_off(self, emit, forget):
        """Session columns of the sessions in ``emit`` (bool mask); those in
        ``forget`` are dropped and the rest renumbered.  The kept frames of
        emitted sessions are dropped too: their rows are out."""
        n = self.n
        cols = self.finish()
        cols["session"] = self.serial.a[:n].copy()
        out = take_rows(cols, np.flatnonzero(emit))
        self.emitted.a[:n] |= emit
        if self.timeouts is None and forget.all():
            return out  # the end of the input: nothing is read after it
        if not forget.any():
            self._drop_frames(np.arange(n))
            return out
        keep = np.flatnonzero(~forget)
        renum = np.full(n + 1, -1, dtype=np.int64)  # renum[-1]: gone
        renum[keep] = np.arange(len(keep))
        for name in ("count", "bytes", "payload", "image", "last_ts", "done",
                     "serial", "emitted", "start_ts", "session_tuple"):  # fmt: skip
            setattr(self, name, _kept(getattr(self, name), keep))
        if self.stats is not None:
            self.stats.grow(max(n, self.stats.n))
            for name, value in vars(self.stats).items():
                if isinstance(value, GrowingRows):
                    setattr(self.stats, name, _kept(value, keep))
            self.stats.n = len(keep)
        if self.static:
            columns = [np.concatenate(x) for x in zip(*self.static)]
            self.static = [tuple(c[keep] for c in columns)]
        self._drop_frames(renum)
        self.retx_seen = {
            (int(renum[k[0]]), *k[1:]) for k in self.retx_seen if renum[k[0]] >= 0
        }
        self.n = len(keep)
        # The 5-tuples whose session is still here; the others are forgotten
        # (their next packet starts a new session anyway).
        n_tuples = len(self.index)
        session = renum[self.tuple_session.a[:n_tuples]]
        live_tuples = np.flatnonzero(session >= 0)
        self.index = SessionIndex()
        if len(live_tuples):
            _, _, tids = self.index.assign(self.tuple_keys.a[live_tuples])
        else:
            tids = np.zeros(0, dtype=np.int64)
        tuple_renum = np.full(n_tuples + 1, -1, dtype=np.int64)
        tuple_renum[live_tuples] = tids
        order = np.argsort(tids)
        kept_tuples = live_tuples[order]
        self.tuple_keys = _kept(self.tuple_keys, kept_tuples)
        self.tuple_last_ts = _kept(self.tuple_last_ts, kept_tuples)
        self.tuple_session = _kept(self.tuple_session, kept_tuples)
        self.tuple_session.a[: len(kept_tuples)] = session[kept_tuples]
        self.session_tuple.a[: self.n] = tuple_renum[self.session_tuple.a[: self.n]]
        return out


def iter_sessions(
    source,
    label=None,
    *,
    emit="end",
    idle_timeout=None,
    active_timeout=None,
    flows=False,
    keep_bytes=KEEP_BYTES,
    keep_packets=0,
    drop_retransmissions=False,
    statistics=False,
    chunk_size=None,
):
    """Yield session tables as the sessions of one capture complete.

    The streaming counterpart of :func:`read_sessions`: the same columns and
    the same sessions, handed on while the capture is still being read, in
    memory bounded by the sessions still open -- a finished session keeps
    nothing, an emitted one only its counters.

    Parameters
    ----------
    source : str, os.PathLike or binary file object
        One capture: a file, a FIFO, ``"-"`` for standard input (``tcpdump
        -w - | ...``) or an open binary file; compressed ones too.
    label : object, default=None
        A ``label`` column with this value.
    emit : {"end", "image"}, default="end"
        ``"end"``: a session comes out when it ends -- when a timeout cuts
        it, when it has been idle for ``idle_timeout`` (of capture time), or
        at the end of the input; its row is then what :func:`read_sessions`
        gives with the same timeouts.  ``"image"``: as soon as its frames
        fill a ``keep_bytes`` AllLayers image (and ``keep_packets`` frames
        are in), all such an image needs, or when it ends if that is
        earlier; its counts are those at that moment (an L7 image of it holds
        the payload seen so far), and its later packets are read but not
        reported again.
    idle_timeout, active_timeout : float or None, default=None
        Seconds, as in :func:`read_sessions`.  A session is over once the
        capture's clock (its latest packet time) is ``idle_timeout`` past
        its last packet; this is exactly :func:`read_sessions`' rule when
        the capture's times run forward, as a live capture's do.  In a file
        whose times jump back (captures concatenated) a packet can come
        after its session was handed on, and then starts a new one.
        Without ``idle_timeout`` a 5-tuple may always come back, so every
        5-tuple stays known (a few dozen bytes each; the frames of emitted
        sessions are dropped) and, with ``emit="end"``, sessions come out at
        the end of the input only.
    flows, keep_bytes, keep_packets, drop_retransmissions, statistics
        As in :func:`read_sessions`.
    chunk_size : int or None, default=None
        Bytes read at once from a classic pcap file (None: 4 MiB); a stream
        hands on what has arrived without waiting for a full chunk.

    Yields
    ------
    sessions : pandas.DataFrame
        The sessions completed since the previous table, with the columns of
        :func:`read_sessions` (``session`` numbers them in the order of their
        first packet, as there).  Tables are handed on after each read, at
        least every 0.2 s while the input keeps coming.

    Raises
    ------
    CaptureError
        When the source is not a capture or is corrupt, after the sessions
        completed before the problem.

    Examples
    --------
    >>> import io, struct
    >>> from sklearn_flowspectrum import iter_sessions
    >>> def udp(sport, payload):
    ...     ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0,
    ...                      64, 17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    ...     return ip + struct.pack("!HHHH", sport, 53, 8 + len(payload), 0) + payload
    >>> data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    >>> for i, (t, port) in enumerate([(0, 5000), (1, 5001), (70, 5000)]):
    ...     p = udp(port, b"q%d" % i)
    ...     data += struct.pack("<IIII", t, 0, len(p), len(p)) + p
    >>> for table in iter_sessions(io.BytesIO(data), idle_timeout=60):
    ...     print(table[["src_port", "first_ts", "packets"]].to_string(index=False))
     src_port  first_ts  packets
         5000       0.0        1
         5001       1.0        1
     src_port  first_ts  packets
         5000      70.0        1

    The packet at 70 s ends the two sessions idle since 0 s and 1 s; the last
    one ends with the input.
    """
    if emit not in _EMIT:
        raise ValueError(f"emit must be one of {_EMIT}, got {emit!r}")
    timeouts = check_timeouts(idle_timeout, active_timeout)
    for param, value in (("keep_bytes", keep_bytes), ("keep_packets", keep_packets)):
        if (
            not isinstance(value, numbers.Integral)
            or isinstance(value, bool)
            or value < 0
        ):
            raise ValueError(f"{param} must be an int >= 0, got {value!r}")
    if chunk_size is not None and (
        not isinstance(chunk_size, numbers.Integral) or chunk_size < 1 << 16
    ):
        raise ValueError(
            f"chunk_size must be an int >= 65536 or None, got {chunk_size!r}"
        )
    name = source_name(source)
    entry = [CaptureEntry(name, label, None, name, source)]
    builder = _StreamingBuilder(
        bool(flows),
        int(keep_bytes),
        int(keep_packets),
        bool(drop_retransmissions),
        bool(statistics),
        timeouts,
    )

    def hand_on(at_end):
        ended = builder.ended(at_end)
        emit_now = ended.copy()
        if emit == "image":
            n = builder.n
            emit_now |= (24 + builder.image.a[:n] >= builder.keep_bytes) & (
                builder.count.a[:n] >= builder.keep_packets
            )
        emit_now &= ~builder.emitted.a[: builder.n]
        if not emit_now.any() and not ended.any():
            return None
        cols = builder.split_off(emit_now, ended)
        if not len(cols["packets"]):
            return None
        table = assemble_table(entry, [cols], [label], label is not None, statistics)
        return table.sort_values("session", kind="stable").reset_index(drop=True)

    with open_capture(source) as capture, gc_paused():
        last = time.monotonic()
        size = chunk_size or 4 << 20
        for batch in capture.batches(size, reuse=True):
            builder.add(batch, decode_batch(batch))
            if capture.source.sized and time.monotonic() - last < _MAX_HOLD:
                continue
            table = hand_on(at_end=False)
            last = time.monotonic()
            if table is not None:
                yield table
        table = hand_on(at_end=True)
        if table is not None:
            yield table
