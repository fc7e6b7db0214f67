"""The session store of a stateful export: each session's hidden state and last clicks, LRU-bounded."""

from __future__ import annotations

import tensorflow as tf

#: Default number of a session's last clicks the stateful signatures remember (exclude_seen).
MAX_SEEN = 100
#: Base of the two int32 digits a session's last-used tick is stored as.
_TICK_BASE = 2**31


def occurrence_rank(keys):
    """For keys [B], how many earlier rows hold the same key: int32 [B].

    Example: [a, b, a, a] -> [0, 0, 1, 2]. Rows of one rank have distinct keys. Memory
    is linear in B (a stable sort of the rows by key), never a [B, B] comparison.
    """
    distinct, group = tf.unique(keys)  # [B] group of each row
    order = tf.argsort(group, stable=True)  # rows of a group together, in row order
    sorted_group = tf.gather(group, order)
    position = tf.range(tf.shape(keys)[0])
    # As many segments as distinct keys: 0 for an empty request (max(group) + 1 was not).
    group_start = tf.math.unsorted_segment_min(position, sorted_group, tf.size(distinct))
    rank = position - tf.gather(group_start, sorted_group)
    return tf.scatter_nd(order[:, None], rank, tf.shape(keys))


class SessionStore(tf.Module):
    """Hidden states and last clicks of live sessions, keyed by session id, bounded by LRU eviction.

    ONE hash table, session id -> one int32 row [H + max_seen + 2]: the state's float32 bits,
    the session's last `max_seen` known clicks (item indices, oldest first, -1 where fewer)
    and its last-used tick (a counter bumped once per write, as two base-2^31 digits). A
    session is written and removed by one op each, so its state, clicks and tick can never
    be held apart (three tables could: an eviction racing a request left rows that `evict`
    never saw). When a request leaves more than `capacity` sessions, the ones with the
    smallest ticks are removed (see `evict`); under concurrent requests eviction can drop a
    few more than needed, never a wrong session's state.
    """

    def __init__(self, state_size, capacity, max_seen=MAX_SEEN):
        super().__init__(name="sessions")
        self.capacity, self.state_size, self.max_seen = int(capacity), int(state_size), int(max_seen)
        # Not held: zero state bits (0.0), no clicks, tick -1.
        empty = tf.concat([tf.zeros([self.state_size], tf.int32), tf.fill([self.max_seen], -1),
                           tf.fill([2], -1)], 0)
        self.table = tf.lookup.experimental.MutableHashTable(tf.string, tf.int32, default_value=empty)
        self.clock = tf.Variable(0, dtype=tf.int64, trainable=False, name="clock")

    def _unpack(self, rows):
        """Rows [b, W] -> (states float32 [b, H], seen int32 [b, max_seen], ticks int64 [b])."""
        rows = tf.ensure_shape(rows, [None, self.state_size + self.max_seen + 2])
        states = tf.bitcast(rows[:, : self.state_size], tf.float32)
        seen = rows[:, self.state_size : self.state_size + self.max_seen]
        digits = tf.cast(rows[:, -2:], tf.int64)
        return states, seen, tf.where(digits[:, 0] < 0, tf.constant(-1, tf.int64),
                                      digits[:, 0] * _TICK_BASE + digits[:, 1])

    def read(self, keys):
        """Session ids [b] -> (states [b, H], seen [b, max_seen], held bool [b]), from one
        lookup; zeros and -1 for sessions not held."""
        states, seen, ticks = self._unpack(self.table.lookup(keys))
        return states, seen, ticks >= 0

    def write(self, keys, states, seen):
        """Stores states [b, H] and seen [b, max_seen] of sessions [b] (distinct ids); marks
        them used now."""
        tick = self.clock.assign_add(1)
        digits = tf.cast(tf.stack([tick // _TICK_BASE, tick % _TICK_BASE]), tf.int32)
        rows = tf.concat([tf.bitcast(states, tf.int32), seen,
                          tf.tile(digits[None, :], [tf.shape(keys)[0], 1])], axis=1)
        return self.table.insert(keys, rows)

    def held(self, keys):
        """Whether each session of [b] has a stored state."""
        return self.read(keys)[2]

    def remove(self, keys):
        """Forgets sessions [b] (state and clicks); returns bool [b], whether each was held."""
        held = self.held(keys)
        with tf.control_dependencies([held]):
            removed = self.table.remove(keys)
        with tf.control_dependencies([removed]):
            return tf.identity(held)

    def evict(self):
        """Over `capacity`, removes the least recently used sessions; returns how many.

        Finding them scans every session (O(capacity), a copy of the table), so each scan
        frees the excess plus 1% of the capacity: at most one scan per `capacity // 100` new
        sessions.
        """
        excess = self.table.size() - self.capacity

        def drop_oldest():
            keys, rows = self.table.export()
            ticks = self._unpack(rows)[2]
            n = tf.minimum(excess + self.capacity // 100, tf.size(ticks, out_type=tf.int64))
            oldest = tf.math.top_k(-ticks, tf.cast(n, tf.int32)).indices
            return tf.reduce_sum(tf.cast(self.remove(tf.gather(keys, oldest)), tf.int64))

        return tf.cond(excess > 0, drop_oldest, lambda: tf.constant(0, tf.int64))

    def size(self):
        return self.table.size()
