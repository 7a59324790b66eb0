/* SPDX-License-Identifier: MIT */
/* Model of the pool's wait/wake protocol (src/wait.c, src/stack.h, src/pool.c,
 * src/os/wait_*.c), for spin. See model/README.md for the abstraction.
 *
 * Threads: G0 (untimed get), G1 (timed get), each putting back what it got;
 * P, which starts holding both blocks and puts them back one by one; C, which
 * closes the pool or does nothing. Store buffers make every plain store of a
 * thread visible to others only when it drains (TSO, as on x86; a weaker
 * machine only adds reorderings that the code's release/acquire pairs rule
 * out for the words modelled here).
 *
 * Variants (cpp macros):
 *   SEQ_CST                     no store buffers (stores hit memory at once)
 *   BROKEN_NO_RECHECK           the get sleeps without looking at the value its
 *                               OR of the WAIT bit returned
 *   BROKEN_TIMEOUT_NO_RECHECK   a timed-out waiter returns ETIMEDOUT without
 *                               re-reading its state under the lock
 *   BROKEN_TIMEOUT_GIVEBACK     a timed-out waiter that was served gives the
 *                               block back to the stack and still keeps it
 *   BROKEN_WAKE_NO_FENCE        the wake does not order the waker's earlier
 *                               stores before its look for sleepers
 */

#define NB        2          /* blocks */
#define BLOCKS    3          /* head bits of the two blocks */
#define WAITB     4          /* head's WAIT bit */
#define NONE      255

#define NT        4          /* threads */
#define G0        0
#define G1        1
#define TP        2
#define TC        3

#define SBN       3          /* store-buffer entries per thread */

/* Words that are written with plain (non-RMW) stores: go through buffers. */
#define V_CLOSED  0
#define V_STATE   1          /* V_STATE + waiter: its futex word */
#define NV        3

/* Waiter states, as in wait.c. */
#define WAITING   0
#define DONE      1
#define CANCELED  2

#define R_OK       0
#define R_TIMEDOUT 1

#ifndef SPURIOUS
#define SPURIOUS  1          /* spurious wake-ups per waiter */
#endif

/* The stack head: bit b set = block b is in the stack, plus WAIT. LIFO order
 * and the ABA tag are abstracted away (a pop may return any free block). */
byte head = 0;

byte mem[NV];                /* memory as other threads see it */
byte sb_var[NT * SBN];
byte sb_val[NT * SBN];
byte sb_n[NT];

byte lock = 0;               /* pool->lock: 0 free, else owner + 1 */
byte q[2] = NONE;            /* FIFO of queued waiters (guarded by lock) */
byte qlen = 0;

bit  asleep[2];              /* inside the futex wait, not yet woken */
byte spur[2] = SPURIOUS;

/* Ghost state for the properties: blocks held by each thread, and the block
 * a put has written into a waiter's out[] array. */
byte hold[NT];
byte slot[2] = NONE;

byte finished = 0;

/* ---- store buffers ---------------------------------------------------- */

/* The helpers use a local `k` of the calling process (reset to 0 after use,
 * so that it adds no states): a hidden global would not be restored when
 * the search backtracks through an atomic sequence. */

inline drain_one(t) {
    mem[sb_var[t * SBN]] = sb_val[t * SBN];
    k = 0;
    do
    :: k + 1 < sb_n[t] ->
        sb_var[t * SBN + k] = sb_var[t * SBN + k + 1];
        sb_val[t * SBN + k] = sb_val[t * SBN + k + 1];
        k++
    :: else -> break
    od;
    sb_n[t]--;
    sb_var[t * SBN + sb_n[t]] = 0;
    sb_val[t * SBN + sb_n[t]] = 0;
    k = 0
}

/* A locked RMW, a fence, mutex lock/unlock: the thread's own stores first. */
inline flush(t) {
    do
    :: sb_n[t] > 0 -> drain_one(t)
    :: else -> break
    od
}

inline store(t, v, x) {
#ifdef SEQ_CST
    mem[v] = x
#else
    atomic {
        assert(sb_n[t] < SBN);   /* property: model-buffer-size */
        sb_var[t * SBN + sb_n[t]] = v;
        sb_val[t * SBN + sb_n[t]] = x;
        sb_n[t]++
    }
#endif
}

/* A thread reads its own newest buffered store (store forwarding). */
inline load(t, v, r) {
    r = mem[v];
    k = 0;
    do
    :: k < sb_n[t] ->
        if
        :: sb_var[t * SBN + k] == v -> r = sb_val[t * SBN + k]
        :: else
        fi;
        k++
    :: else -> break
    od;
    k = 0
}

/* Buffers drain in the background, at any moment, oldest store first. */
proctype drainer() {
    byte k;
end:
    do
    :: d_step { sb_n[G0] > 0 -> drain_one(G0) }
    :: d_step { sb_n[G1] > 0 -> drain_one(G1) }
    :: d_step { sb_n[TP] > 0 -> drain_one(TP) }
    :: d_step { sb_n[TC] > 0 -> drain_one(TC) }
    od
}

/* ---- pool->lock -------------------------------------------------------- */

inline mutex_lock(t) {
    atomic { lock == 0 -> lock = t + 1; flush(t) }
}

inline mutex_unlock(t) {
    atomic {
        assert(lock == t + 1);   /* property: mutex */
        flush(t);
        lock = 0
    }
}

/* ---- the stack head (every change is an RMW: it drains the buffer) ----- */

/* stack_pop: the CAS loop as one step; pops ignore and keep WAIT. */
inline pop(t, b) {
    atomic {
        flush(t);
        if
        :: head & 1 -> head = head - 1; hold[t] = hold[t] + 1; b = 0
        :: head & 2 -> head = head - 2; hold[t] = hold[t] + 2; b = 1
        :: (head & BLOCKS) == 0 -> b = NONE
        fi
    }
}

/* stack_push_many(locked = false): the CAS fails while WAIT is set. */
inline push_fast(t, b, ok) {
    atomic {
        flush(t);
        if
        :: (head & WAITB) == 0 ->
            assert((head & (1 << b)) == 0);   /* property: one-owner */
            head = head + (1 << b);
            hold[t] = hold[t] - (1 << b);
            ok = 1
        :: else -> ok = 0
        fi
    }
}

/* stack_push_many(locked = true): under the lock, WAIT or not. */
inline push_locked(t, b) {
    atomic {
        flush(t);
        assert((head & (1 << b)) == 0);   /* property: one-owner */
        head = head + (1 << b);
        hold[t] = hold[t] - (1 << b)
    }
}

/* wait_bit_update (under the lock): WAIT = "a waiter is queued". */
inline wait_bit_update(t) {
    atomic {
        if
        :: qlen > 0 && (head & WAITB) == 0 -> flush(t); head = head + WAITB
        :: qlen == 0 && (head & WAITB) != 0 -> flush(t); head = head - WAITB
        :: else
        fi
    }
}

inline dequeue(w) {
    assert(qlen > 0);   /* property: queue */
    if
    :: q[0] == w -> q[0] = q[1]
    :: else -> assert(q[1] == w)   /* property: queue */
    fi;
    q[1] = NONE;
    qlen--
}

/* ---- the futex: sleep while word == expected --------------------------- */

/* mempool__os_wait(&state[t], WAITING, deadline). The compare and the
 * going to sleep are one step: the kernel does both under the hash-bucket
 * lock, the condvar backend under the bucket mutex. A timed waiter may see
 * its deadline pass at any moment; any sleeper may wake spuriously (a
 * signal, an EINTR) while it has budget left. */
inline futex_wait(t, timed, r) {
    atomic {
        load(t, V_STATE + t, sv);
        if
        :: timed -> r = R_TIMEDOUT; sl = 0
        :: sv != WAITING -> r = R_OK; sl = 0
        :: sv == WAITING -> asleep[t] = 1; sl = 1
        fi;
        sv = 0
    }
    if
    :: sl ->
        if
        :: atomic { asleep[t] == 0 -> r = R_OK }
        :: atomic { timed && asleep[t] -> asleep[t] = 0; r = R_TIMEDOUT }
        :: atomic { spur[t] > 0 && asleep[t] -> spur[t]--; asleep[t] = 0; r = R_OK }
        fi;
        sl = 0
    :: else
    fi
}

/* mempool__os_wake: FUTEX_WAKE passes a full barrier (futex_wake's
 * smp_mb before it looks for waiters); the condvar backend takes the bucket
 * mutex. Either way the waker's earlier stores are visible first. */
inline futex_wake(t, w) {
    atomic {
#ifndef BROKEN_WAKE_NO_FENCE
        flush(t);
#endif
        asleep[w] = 0
    }
}

/* ---- put ---------------------------------------------------------------- */

/* mempool__put_slow: hand the block to the oldest waiter, else push it. */
inline put_slow(t, b) {
    mutex_lock(t);
    atomic {
        if
        :: qlen > 0 ->
            w = q[0];
            dequeue(w);
            /* give_locked: out[] gets the block, then the release store. */
            hold[t] = hold[t] - (1 << b);
            assert(slot[w] == NONE);   /* property: one-owner */
            slot[w] = b;
            store(t, V_STATE + w, DONE)
        :: else -> push_locked(t, b); w = NONE
        fi
    }
    wait_bit_update(t);
    mutex_unlock(t);
    /* unlock_and_wake: the wake comes after the unlock. */
    if
    :: w != NONE -> futex_wake(t, w); w = NONE
    :: else
    fi
}

inline put(t, b) {
    push_fast(t, b, ok);
    if
    :: ok -> skip
    :: else -> put_slow(t, b)
    fi;
    ok = 0
}

/* ---- get ---------------------------------------------------------------- */

proctype getter(byte me; bit timed) {
    byte b = NONE, old, sv, st, r, w, k;
    bit c, sl, ok;

    /* mempool_get_timeout fast path: closed? then one pop. */
    atomic { load(me, V_CLOSED, c) };
    if
    :: c -> goto finish
    :: else
    fi;
    pop(me, b);
    if
    :: b != NONE -> goto got
    :: else
    fi;

    /* mempool__get_slow */
    mutex_lock(me);
    atomic { load(me, V_CLOSED, c) };
    if
    :: c -> wait_bit_update(me); mutex_unlock(me); goto finish
    :: else
    fi;
take:
    pop(me, b);
    if
    :: b != NONE -> wait_bit_update(me); mutex_unlock(me); goto got
    :: else
    fi;
    atomic { flush(me); old = head; head = head | WAITB };
#ifndef BROKEN_NO_RECHECK
    /* A put landed before the OR: take its block instead of sleeping. */
    if
    :: (old & BLOCKS) != 0 -> old = 0; goto take
    :: else
    fi;
#endif
    old = 0;
    atomic { store(me, V_STATE + me, WAITING); q[qlen] = me; qlen++ };
    wait_bit_update(me);
    mutex_unlock(me);

    /* sleep_queued */
sleep:
    atomic { load(me, V_STATE + me, st) };
    if
    :: st != WAITING -> goto served
    :: else
    fi;
    futex_wait(me, timed, r);
    if
    :: r != R_TIMEDOUT -> goto sleep
    :: else
    fi;
    /* The deadline passed: look at the state once more under the lock. */
    mutex_lock(me);
    atomic { load(me, V_STATE + me, st) };
#ifdef BROKEN_TIMEOUT_NO_RECHECK
    if
    :: st == WAITING -> dequeue(me); wait_bit_update(me)
    :: else
    fi;
    mutex_unlock(me);
    goto finish;
#endif
#ifdef BROKEN_TIMEOUT_GIVEBACK
    if
    :: st == DONE -> atomic { flush(me); head = head + (1 << slot[me]) }
    :: else
    fi;
#endif
    if
    :: st == WAITING -> dequeue(me); wait_bit_update(me)
    :: else
    fi;
    mutex_unlock(me);
    if
    :: st == WAITING -> goto finish      /* ETIMEDOUT */
    :: else
    fi;
served:
    if
    :: st == DONE ->
        atomic { b = slot[me]; slot[me] = NONE; hold[me] = hold[me] + (1 << b) }
    :: st == CANCELED -> goto finish
    fi;
got:
    st = 0; r = 0;
    put(me, b);
    b = NONE;
finish:
    /* A block handed to this waiter and never collected would be lost. */
    assert(slot[me] == NONE);   /* property: conserved */
    atomic { flush(me); finished++ }
}

proctype putter() {
    byte w, k;
    bit ok;
    put(TP, 0);
    put(TP, 1);
    atomic { flush(TP); finished++ }
}

/* mempool_close: marks the pool closed and cancels every queued waiter,
 * waking each at once while still holding the lock. */
proctype closer() {
    byte i, w, k;
    if
    :: skip
    :: mutex_lock(TC);
        store(TC, V_CLOSED, 1);
        i = 0;
        do
        :: i < qlen ->
            w = q[i];
            store(TC, V_STATE + w, CANCELED);
            futex_wake(TC, w);
            i++
        :: else -> break
        od;
        atomic { q[0] = NONE; q[1] = NONE; qlen = 0; i = 0; w = 0 };
        wait_bit_update(TC);
        mutex_unlock(TC)
    fi;
    atomic { flush(TC); finished++ }
}

/* ---- properties --------------------------------------------------------- */

/* Where block b is: stack, a thread, a waiter's out[]. Exactly one place. */
#define IN(b) (((head >> b) & 1) + ((hold[0] >> b) & 1) + ((hold[1] >> b) & 1) \
               + ((hold[2] >> b) & 1) + ((hold[3] >> b) & 1) \
               + (slot[0] == b -> 1 : 0) + (slot[1] == b -> 1 : 0))
#define ONE_OWNER   (IN(0) <= 1 && IN(1) <= 1)
#define CONSERVED   (IN(0) >= 1 && IN(1) >= 1)
/* Outside the lock: a queued waiter implies an empty stack (no waiter
 * sleeps while a block is free), and WAIT is set exactly when one is queued. */
#define NO_IDLE_BLOCK (lock != 0 || qlen == 0 || (head & BLOCKS) == 0)
#define WAIT_EXACT  (lock != 0 || ((head & WAITB) != 0 -> 1 : 0) == (qlen > 0 -> 1 : 0))

proctype monitor() {
end:
    atomic {
        !(ONE_OWNER && CONSERVED && NO_IDLE_BLOCK && WAIT_EXACT) ->
        assert(ONE_OWNER);       /* property: one-owner */
        assert(CONSERVED);       /* property: conserved */
        assert(NO_IDLE_BLOCK);   /* property: no-idle-block */
        assert(WAIT_EXACT)       /* property: wait-bit */
    }
}

init {
    atomic {
        hold[TP] = BLOCKS;   /* the pool starts with every block out */
        run monitor();
        run drainer();
        run getter(G0, 0);
        run getter(G1, 1);
        run putter();
        run closer()
    }
    /* Every thread returns (a waiter asleep for ever leaves this blocked:
     * an invalid end state), then every block is back and WAIT is clear. */
    finished == NT;
    assert(head == BLOCKS && qlen == 0);   /* property: conserved */
}
