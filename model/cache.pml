/* SPDX-License-Identifier: MIT */
/* Model of the cache reclaim protocol (the asymmetric fence of src/cache.h,
 * mempool__caches_reclaim, mempool__caches_arm and mempool__wait_bit_update of
 * src/locked.c, take_locked of src/wait.c), for spin. See model/README.md
 * for the abstraction.
 *
 * Threads: one or two cache owners (OWNERS), each doing OPS gets or puts on
 * its own cache and then putting back what it holds; one or two gets
 * (GETTERS) that find the shared stack empty and reclaim from the caches
 * under the pool lock before they fail (try_get) or sleep. Each thread's
 * plain stores go through its own store buffer, which drains at any moment
 * (TSO, as on x86); a full buffer stalls its thread.
 *
 * Variants (cpp macros):
 *   SEQ_CST                    no store buffers (stores hit memory at once)
 *   ORDERED                    the fallback: the owner marks itself busy and
 *                              not busy with seq_cst exchanges, the reclaimer
 *                              issues no heavy barrier
 *   OWNERS=1|2, OPS=n,         the size of the model (default 2, 1, 1, 3)
 *   GETTERS=1|2, SBN=n
 *   BROKEN_NO_BARRIER          the reclaimer skips the heavy barrier
 *   BROKEN_NO_SECOND_CHECK     the owner does not look at steal again after
 *                              it clears busy
 *   BROKEN_ORDERED_LEAVE       (with ORDERED) the owner clears busy with a
 *                              release store instead of an exchange
 *   BROKEN_NOT_ARMED           a get that goes to sleep clears steal after
 *                              its reclaim, as a non-waiting one does (its
 *                              wait_bit_update then arms the caches again,
 *                              without looking at them)
 *   BROKEN_HONOUR_UNLOCKED     the owner empties its cache without the pool
 *                              lock when it honours a steal request
 */

#ifndef OWNERS
#define OWNERS    2          /* cache owners: threads O0 and O1 */
#endif
#ifndef OPS
#define OPS       1          /* operations per owner, before its put-backs */
#endif

#ifndef GETTERS
#define GETTERS   1          /* reclaiming gets: threads R0 and R1 */
#endif

#define NB        2          /* blocks */
#define NT        4          /* threads: O0, O1, R0, R1 */
#define TR        2          /* the first reclaiming get */

#ifndef SBN
#define SBN       3          /* store-buffer entries per thread */
#endif

/* Words of the caches, as other threads see them (plain or ordered stores). */
#define V_BUSY    0          /* V_BUSY + owner: cache->busy */
#define V_CNT     2          /* V_CNT + owner: cache->count */
#define V_STEAL   4          /* V_STEAL + owner: cache->steal */
#define NV        6
#define VMASK     7
#define CLOSE     8          /* tag: the store of busy = 0 in cache_leave */

byte mem[NV];
byte sb_var[NT * SBN];
byte sb_val[NT * SBN];
byte sb_n[NT];

byte lock = 0;               /* pool->lock: 0 free, else owner + 1 */

/* The shared stack: its depth and its WAIT bit (every change is a locked
 * RMW of the head, so it drains the thread's buffer first). */
byte pool = 0;
bit  waitb = 0;

/* Under the pool lock: pool->caches_armed, and the FIFO of waiters (the
 * reclaiming gets that went to sleep). */
bit  armed = 0;
byte q[2];
byte qlen = 0;

/* Ghost state for the properties. hold: blocks an owner holds (got and not
 * yet put); handed: blocks handed to each waiting get; rgot: blocks each get
 * took from the shared stack; eagain: the get was a try_get that failed;
 * inside: critical sections of the owner (from a successful steal check to
 * its store of busy = 0 reaching memory) not yet closed. */
byte hold[2];
byte handed[2];
byte rgot[2];
bit  eagain[2];
byte inside[2];
byte finished = 0;

/* ---- store buffers (as in wait.pml) ------------------------------------ */

/* A store reaches memory. The owner's store of busy = 0 that ends its
 * critical section is tagged CLOSE: the critical section (ghost `inside`)
 * ends when that store reaches memory, since until then the owner's count
 * stores may not have either. */
inline write(t, v, x) {
    mem[(v) & VMASK] = x;
    if
    :: ((v) & CLOSE) != 0 -> inside[t]--
    :: else
    fi
}

/* The helpers use a local `k` of the calling process (reset to 0 after use,
 * so that it adds no states): a hidden global would not be restored when
 * the search backtracks through an atomic sequence. */

inline drain_one(t) {
    write(t, sb_var[(t) * SBN], sb_val[(t) * SBN]);
    k = 0;
    do
    :: k + 1 < sb_n[t] ->
        sb_var[(t) * SBN + k] = sb_var[(t) * SBN + k + 1];
        sb_val[(t) * SBN + k] = sb_val[(t) * SBN + k + 1];
        k++
    :: else -> break
    od;
    sb_n[t]--;
    sb_var[(t) * SBN + sb_n[t]] = 0;
    sb_val[(t) * SBN + sb_n[t]] = 0;
    k = 0
}

/* A locked RMW, a seq_cst store or exchange, mutex lock/unlock: the
 * thread's own stores first. Such a step waits until the thread's buffer
 * has drained (the drainer empties it meanwhile, store by store), then runs
 * as one atomic step guarded by drained(t). */
#define drained(t) (sb_n[t] == 0)

/* A plain (relaxed or release) store: into the buffer. */
inline store(t, v, x) {
#ifdef SEQ_CST
    atomic { write(t, v, x) }
#else
    atomic {
        sb_n[t] < SBN ->         /* a full buffer stalls the thread */
        sb_var[(t) * SBN + sb_n[t]] = v;
        sb_val[(t) * SBN + sb_n[t]] = x;
        sb_n[t]++
    }
#endif
}

/* A seq_cst store or exchange (xchg on x86): drains the buffer, then
 * writes memory. */
inline seq_store(t, v, x) {
    atomic { drained(t) -> write(t, v, x) }
}

/* A thread reads its own newest buffered store (store forwarding). */
inline load(t, v, r) {
    r = mem[v];
    k = 0;
    do
    :: k < sb_n[t] ->
        if
        :: (sb_var[(t) * SBN + k] & VMASK) == v -> r = sb_val[(t) * SBN + k]
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
    :: d_step { sb_n[0] > 0 -> drain_one(0) }
    :: d_step { sb_n[1] > 0 -> drain_one(1) }
    :: d_step { sb_n[TR] > 0 -> drain_one(TR) }
    :: d_step { sb_n[TR + 1] > 0 -> drain_one(TR + 1) }
    od
}

/* membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): every thread executes a full
 * barrier at some point during the call. One atomic step that drains every
 * buffer: the argument needs, for each owner alone, only that its fence
 * falls between the reclaimer's steal stores and its busy loads, so the
 * fences of different threads may as well fall at the same instant. */
inline heavy_barrier(t) {
#if !defined(ORDERED) && !defined(BROKEN_NO_BARRIER)
    atomic { drained(0) && drained(1) && drained(TR) && drained(TR + 1) -> skip }
#else
    skip
#endif
}

/* ---- pool->lock -------------------------------------------------------- */

inline mutex_lock(t) {
    atomic { lock == 0 && drained(t) -> lock = t + 1 }
}

inline mutex_unlock(t) {
    atomic {
        drained(t) ->
        assert(lock == t + 1);   /* property: mutex */
        lock = 0
    }
}

/* ---- under the lock: give, wait_bit_update, arming --------------------- */

/* mempool__give_locked of n blocks (lock held; call inside an atomic step
 * guarded by drained(t), since a push to the stack is a CAS): the oldest
 * waiters first, the rest to the stack. The waiter's state store and its
 * futex wake are wait.pml's business: here the hand-off is immediate. */
inline give(t, n) {
    do
    :: n > 0 && qlen > 0 ->
        handed[q[0] - TR]++;
        q[0] = q[1]; q[1] = 0; qlen--;
        n--
    :: else -> break
    od;
    if
    :: n > 0 -> pool = pool + n; n = 0
    :: else
    fi
}

/* caches_set_steal: a seq_cst store on each cache. */
inline set_steal(t, on) {
    seq_store(t, V_STEAL + 0, on);
#if OWNERS > 1
    seq_store(t, V_STEAL + 1, on)
#endif
}

/* mempool__wait_bit_update: WAIT = "a waiter is queued", then
 * mempool__caches_arm(pool, WAIT). */
inline wait_bit_update(t) {
    atomic {
        drained(t) ->
        if
        :: qlen > 0 && !waitb -> waitb = 1
        :: qlen == 0 && waitb -> waitb = 0
        :: else
        fi
    }
    if
    :: qlen > 0 && !armed -> armed = 1; set_steal(t, 1); heavy_barrier(t)
    :: qlen == 0 && armed -> armed = 0; set_steal(t, 0)
    :: else
    fi
}

/* ---- the owners -------------------------------------------------------- */

/* cache_enter: busy = 1, then load steal; ok = 1 when not armed. A failed
 * enter clears busy with a release store. */
inline cache_enter(t) {
#if defined(ORDERED)
    seq_store(t, V_BUSY + t, 1);
#else
    store(t, V_BUSY + t, 1);
#endif
    atomic {
        load(t, V_STEAL + t, s);
        if
        :: !s -> inside[t]++; ok = 1
        :: else -> ok = 0
        fi;
        s = 0
    }
    if
    :: !ok -> store(t, V_BUSY + t, 0)
    :: else
    fi
}

/* cache_leave: busy = 0 (release store, or an exchange when ordered), then
 * load steal; honour the request if it is set. */
inline cache_leave(t) {
#if defined(ORDERED) && !defined(BROKEN_ORDERED_LEAVE)
    seq_store(t, (V_BUSY + t) | CLOSE, 0);
#else
    store(t, (V_BUSY + t) | CLOSE, 0);
#endif
#ifndef BROKEN_NO_SECOND_CHECK
    atomic { load(t, V_STEAL + t, s) };
    if
    :: s -> s = 0; honour(t)
    :: else
    fi
#endif
}

/* mempool__cache_honour: the pool lock, then cache_empty_locked (the blocks
 * go to the waiter or the stack) and wait_bit_update. */
inline honour(t) {
#ifdef BROKEN_HONOUR_UNLOCKED
    atomic { drained(t) -> load(t, V_CNT + t, n); give(t, n); store(t, V_CNT + t, 0) };
    mutex_lock(t);
#else
    mutex_lock(t);
    atomic { drained(t) -> load(t, V_CNT + t, n); give(t, n); store(t, V_CNT + t, 0) };
#endif
    wait_bit_update(t);
    mutex_unlock(t)
}

/* cache_hit_get; a miss (armed or empty cache) pops the shared stack
 * (refills and the slow get are left out: the owner's get just fails). */
inline get_op(t) {
    cache_enter(t);
    c = 0;
    if
    :: ok ->
        atomic { load(t, V_CNT + t, c) };
        if
        :: c > 0 -> atomic { store(t, V_CNT + t, c - 1); hold[t]++ }
        :: else
        fi;
        cache_leave(t)
    :: else -> honour(t)
    fi;
    if
    :: !ok || c == 0 ->
        atomic { drained(t) -> if :: pool > 0 -> pool--; hold[t]++ :: else fi }
    :: else
    fi;
    c = 0; ok = 0
}

/* cache_hit_put (the magazine has room for every block); when armed: honour,
 * then the fast push, which fails while WAIT is set, then put_slow. */
inline put_op(t) {
    cache_enter(t);
    if
    :: ok ->
        atomic { load(t, V_CNT + t, c) };
        atomic { store(t, V_CNT + t, c + 1); hold[t]-- };
        c = 0;
        cache_leave(t)
    :: else ->
        honour(t);
        atomic { drained(t) -> if :: !waitb -> pool++; hold[t]--; ok = 1 :: else fi };
        if
        :: !ok ->
            mutex_lock(t);
            atomic { drained(t) -> hold[t]--; n = 1; give(t, n) };
            wait_bit_update(t);
            mutex_unlock(t)
        :: else
        fi
    fi;
    ok = 0
}

proctype owner(byte me) {
    byte c, n, ops, k;
    bit s, ok;
    do
    :: ops < OPS ->
        if
        :: hold[me] > 0 -> put_op(me)
        :: get_op(me)
        fi;
        ops++
    :: ops == OPS && hold[me] > 0 -> put_op(me)
    :: ops == OPS && hold[me] == 0 -> break
    od;
    atomic { drained(me) -> finished++ }
}

/* ---- the reclaiming get ------------------------------------------------ */

/* mempool__caches_reclaim(pool, wk, keep) under the lock; moved = blocks
 * taken. A reclaim that would arm the caches first reads the counts
 * (relaxed loads) and pays no barrier when they read zero, unless it is the
 * reclaim of a get about to sleep. */
inline reclaim(keep) {
    moved = 0;
    n = 1;
    if
    :: !keep && !armed ->
        atomic { load(me, V_CNT + 0, n) };
#if OWNERS > 1
        atomic { load(me, V_CNT + 1, c); n = n + c; c = 0 }
#endif
    :: else
    fi;
    if
    :: n > 0 ->
        if
        :: !armed -> set_steal(me, 1); heavy_barrier(me)
        :: else
        fi;
        i = 0;
        do
        :: i < OWNERS ->
            atomic { load(me, V_BUSY + i, b) };
            if
            :: !b ->
                /* cache_empty_locked. The guard drains R's count = 0 of an
                 * earlier cache a little before the code would (at the
                 * CAS of its push): nobody can read that count meanwhile,
                 * since its owner is armed and R holds the lock. */
                atomic {
                    drained(me) ->
                    assert(inside[i] == 0);   /* property: mutual-exclusion */
                    load(me, V_CNT + i, n);
                    moved = moved + n;
                    give(me, n);
                    store(me, V_CNT + i, 0)
                }
            :: else
            fi;
            b = 0;
            i++
        :: else -> break
        od;
        i = 0;
#ifndef BROKEN_NOT_ARMED
        if
        :: keep -> armed = 1
        :: !keep && !armed -> set_steal(me, 0)
        :: else
        fi
#else
        if
        :: !armed -> set_steal(me, 0)
        :: else
        fi
#endif
    :: else
    fi;
    n = 0
}

/* mempool__get_slow with take_locked: a try_get (no_wait) or a get that
 * sleeps. */
proctype reclaimer(byte me) {
    byte moved, n, c, i, k;
    bit b, old, no_wait, got;
    if
    :: no_wait = 1
    :: no_wait = 0
    fi;
    mutex_lock(me);
take:
    atomic { drained(me) -> if :: pool > 0 -> pool--; rgot[me - TR]++; got = 1 :: else fi };
    if
    :: got -> goto done
    :: else
    fi;
    /* Blocks parked in other threads' caches are free too. */
    reclaim(0);
    if
    :: moved > 0 -> goto take
    :: else
    fi;
    if
    :: no_wait -> eagain[me - TR] = 1; goto done
    :: else
    fi;
    atomic { drained(me) -> old = (pool > 0); waitb = 1 };
    if
    :: old -> old = 0; goto take
    :: else
    fi;
    /* WAIT is set: arm the caches and look at them once more. */
    reclaim(1);
    if
    :: moved > 0 -> goto take
    :: else
    fi;
    q[qlen] = me; qlen++;
    wait_bit_update(me);
    mutex_unlock(me);
    /* sleep_queued: until a put or an honour hands a block over. A waiter
     * that sleeps for ever leaves an invalid end state: a stranded block. */
    handed[me - TR] > 0;
    goto fin;
done:
    wait_bit_update(me);
    mutex_unlock(me);
fin:
    atomic { drained(me) -> finished++ }
}

/* ---- properties --------------------------------------------------------- */

#define EMPTY_BUFFERS (sb_n[0] == 0 && sb_n[1] == 0 && sb_n[TR] == 0 \
                       && sb_n[TR + 1] == 0)
#define BLOCKS (pool + mem[V_CNT + 0] + mem[V_CNT + 1] + hold[0] + hold[1] \
                + handed[0] + handed[1] + rgot[0] + rgot[1])
/* A get ends with one block, unless it was a try_get that failed. */
#define SERVED(g) (handed[g] + rgot[g] == 1 || (eagain[g] && handed[g] + rgot[g] == 0))
/* Once the buffers have drained, every block is in exactly one place. */
#define CONSERVED (!EMPTY_BUFFERS || BLOCKS == NB)
/* Outside the lock, while R waits: the stack is empty (nobody sleeps while
 * a block is free), and every cache is armed, so puts go to the waiter. */
#define NO_IDLE_BLOCK (lock != 0 || qlen == 0 || pool == 0)
#define ARMED (lock != 0 || qlen == 0 || \
               (armed && mem[V_STEAL + 0] && (OWNERS < 2 || mem[V_STEAL + 1])))

proctype monitor() {
end:
    atomic {
        !(CONSERVED && NO_IDLE_BLOCK && ARMED) ->
        assert(CONSERVED);       /* property: conserved */
        assert(NO_IDLE_BLOCK);   /* property: no-idle-block */
        assert(ARMED)            /* property: armed */
    }
}

init {
    atomic {
        /* O0 has a block in its cache, O1 (or O0 alone) holds the other. */
        mem[V_CNT + 0] = 1;
#if OWNERS > 1
        hold[1] = 1;
#else
        hold[0] = 1;
#endif
        run monitor();
        run drainer();
        run owner(0);
#if OWNERS > 1
        run owner(1);
#endif
        run reclaimer(TR);
#if GETTERS > 1
        run reclaimer(TR + 1);
#endif
    }
    /* Every thread returns (a waiter asleep for ever leaves this blocked:
     * an invalid end state); then the waiter got its block, unless it was a
     * try_get that failed, every block is accounted for, and the caches are
     * disarmed. */
    finished == OWNERS + GETTERS;
    assert(BLOCKS == NB);                          /* property: conserved */
    assert(SERVED(0) && (GETTERS < 2 || SERVED(1)));   /* property: conserved */
    assert(qlen == 0 && !waitb && !armed && !mem[V_STEAL + 0] && !mem[V_STEAL + 1])   /* property: armed */
}
