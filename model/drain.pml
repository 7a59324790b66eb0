/* SPDX-License-Identifier: MIT */
/* Model of mempool_drain against per-thread caches (mempool_drain and
 * mempool__drain_check and mempool__cache_empty_locked of src/locked.c,
 * refill and spill of src/cache.c, the asymmetric fence of src/cache.h), for spin. See
 * model/README.md for the abstraction.
 *
 * Threads: one or two cache owners (OWNERS), each doing OPS gets, puts or
 * flushes through its own cache (with refill and spill) and then putting
 * back what it holds and exiting (which empties its cache) or staying idle;
 * a thread without
 * a cache that starts with blocks out and puts them back one by one; one
 * drainer, which waits for ever. Each owner's plain stores go through its
 * own store buffer, which drains at any moment (TSO, as on x86).
 *
 * The protocol modelled by default is the fixed one:
 *   - emptying a cache (honour, flush, thread exit) reads its count, sets it
 *     to 0 and hands all its blocks over in one step, then runs the drain
 *     check once;
 *   - the drain check first loads every cache's busy word, then the stack
 *     depth and the counts, and completes the drain only if no cache was
 *     busy and the sum is the capacity;
 *   - mempool_drain arms the caches (WAIT, steal, heavy barrier) before its
 *     first check, and makes no check before that.
 *
 * Variants (cpp macros):
 *   SEQ_CST                no store buffers
 *   ORDERED                the fallback: busy set and cleared with seq_cst
 *                          exchanges, no heavy barrier
 *   OWNERS=1|2, OPS=n,     the size of the model (default 1, 2, 3, 3)
 *   NB=n, SBN=n
 *   START=0..3             where the blocks start (default: any of 0..2;
 *                          see init)
 *   PRE_0_2                the protocol before 0.2.0: the three bugs
 *                          below together
 *   BROKEN_ONE_BY_ONE      emptying a cache hands its blocks over one at a
 *                          time, runs the drain check after each, and zeroes
 *                          the count at the end
 *   BROKEN_NO_BUSY_CHECK   the drain check does not look at busy
 *   BROKEN_UNARMED_CHECK   mempool_drain first checks without arming
 *                          (mempool_available), and returns 0 if that check
 *                          sees the pool complete
 *   BROKEN_BUSY_LAST       the drain check loads the busy words after the
 *                          stack depth and the counts, not before
 *   BROKEN_HONOUR_NO_CHECK emptying a cache runs no drain check (only a put
 *                          to the stack does)
 *   BROKEN_CLOSED_GET      a get whose cache_enter saw steal returns without
 *                          honouring it (as get_miss does when it then finds
 *                          the pool closed)
 *   BROKEN_NO_BARRIER      arming the caches skips the heavy barrier
 */

#ifdef PRE_0_2
#define BROKEN_ONE_BY_ONE
#define BROKEN_NO_BUSY_CHECK
#define BROKEN_UNARMED_CHECK
#endif

#ifndef OWNERS
#define OWNERS    1          /* cache owners: threads O0 and O1 */
#endif
#ifndef OPS
#define OPS       2          /* operations per owner, before its put-backs */
#endif
#ifndef NB
#define NB        3          /* blocks: the pool's capacity */
#endif

#define SZ        2          /* magazine size */
#define BATCH     1          /* a refill takes size / 2 blocks */
#define COLD      1          /* a spill sends size / 2 blocks back */

#define NT        4          /* threads: O0, O1, H, D */
#define TH        2          /* the thread without a cache */
#define TD        3          /* the drainer */

#ifndef SBN
#define SBN       3          /* store-buffer entries per owner */
#endif

/* Words of the caches, as other threads see them. */
#define V_BUSY    0          /* V_BUSY + owner: cache->busy */
#define V_CNT     2          /* V_CNT + owner: cache->count */
#define V_STEAL   4          /* V_STEAL + owner: cache->steal */
#define NV        6

byte mem[NV];
byte sb_var[OWNERS * SBN];
byte sb_val[OWNERS * SBN];
byte sb_n[NT];               /* only owners ever buffer a store */

byte lock = 0;               /* pool->lock: 0 free, else thread + 1 */

/* The shared stack: its depth and its WAIT bit (every change is a locked
 * RMW of the head, so it drains the thread's buffer first). */
byte pool = 0;
bit  waitb = 0;

/* Under the pool lock: pool->drainers, pool->caches_armed. */
bit  drainers = 0;
bit  armed = 0;
/* pool->drain_seq: bumped by the check that completes the drain. */
byte dseq = 0;

/* Ghost state. hold: blocks each thread holds (got and not yet put);
 * transit: blocks a refill has popped from the stack and not yet stored in
 * the magazine's count; dup: blocks already in the stack that the cache's
 * count still includes (a spill or a block-by-block emptying between its
 * push and its count store). window: a drain check is running; clean: at
 * some instant since it started, no block was out. */
byte hold[3];
byte transit[2];
byte dup[2];
bit  window = 0;
bit  clean = 0;
byte finished = 0;

#define LOOSE (hold[0] + hold[1] + hold[TH] + transit[0] + transit[1])

/* After a step that may bring the last block back: note it for the drain
 * check that is running. */
inline latch() {
    if
    :: window && LOOSE == 0 -> clean = 1
    :: else
    fi
}

/* ---- store buffers (as in cache.pml) ----------------------------------- */

/* The helpers use a local `k` of the calling process, reset to 0 after
 * use. */

inline drain_one(t) {
    mem[sb_var[(t) * SBN]] = sb_val[(t) * SBN];
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

/* A locked RMW, a seq_cst store or exchange, a mutex lock or unlock runs
 * only once the thread's buffer has drained. */
#define drained(t) (sb_n[t] == 0)

/* A plain (relaxed or release) store of an owner: into its buffer; a full
 * buffer stalls the owner. */
inline store(t, v, x) {
#ifdef SEQ_CST
    mem[v] = x
#else
    sb_n[t] < SBN ->
    sb_var[(t) * SBN + sb_n[t]] = v;
    sb_val[(t) * SBN + sb_n[t]] = x;
    sb_n[t]++
#endif
}

inline seq_store(t, v, x) {
    atomic { drained(t) -> mem[v] = x }
}

/* A load, forwarded from the thread's own newest buffered store. */
inline load(t, v, r) {
    r = mem[v];
    k = 0;
    do
    :: (t) < OWNERS && k < sb_n[t] ->
        if
        :: sb_var[(t) * SBN + k] == v -> r = sb_val[(t) * SBN + k]
        :: else
        fi;
        k++
    :: else -> break
    od;
    k = 0
}

/* The owners' buffers drain in the background, oldest store first. */
proctype buffers() {
    byte k;
end:
    do
    :: d_step { sb_n[0] > 0 -> drain_one(0) }
#if OWNERS > 1
    :: d_step { sb_n[1] > 0 -> drain_one(1) }
#endif
    od
}

/* membarrier: one step at which every owner's buffer is empty (see
 * cache.pml). */
inline heavy_barrier() {
#if !defined(ORDERED) && !defined(BROKEN_NO_BARRIER)
    atomic { drained(0) && drained(1) -> skip }
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

/* ---- under the lock: the drain check, wait_bit_update ------------------ */

/* The first read of a drain check opens its window. */
inline open_window() {
    if
    :: !window -> window = 1; clean = (LOOSE == 0)
    :: else
    fi
}

/* Loads every cache's busy word; busy = 1 if one is set. */
inline busy_loads(t) {
    atomic { open_window(); load(t, V_BUSY + 0, b); busy = busy | b };
#if OWNERS > 1
    atomic { load(t, V_BUSY + 1, b); busy = busy | b };
#endif
    b = 0
}

/* mempool__available_locked: the stack depth, then each cache's count
 * (relaxed loads), clamped to the capacity. */
inline sizes(t) {
    atomic { open_window(); av = pool };
    atomic { load(t, V_CNT + 0, cc); av = av + cc; cc = 0 };
#if OWNERS > 1
    atomic { load(t, V_CNT + 1, cc); av = av + cc; cc = 0 };
#endif
    skip
}

/* The check: complete = the drain may return 0. A check that says so must have
 * seen, at some instant while it ran, every block back (in the stack or a
 * cache): gets may take blocks again right after, but not before. */
inline decide() {
    atomic {
        complete = (av >= NB && !busy);
        if
        :: complete -> assert(clean)   /* property: no-block-out */
        :: else
        fi;
        window = 0; clean = 0; av = 0; busy = 0
    }
}

/* The armed check (drain_check, and mempool_drain's check after arming). */
inline check(t) {
#if !defined(BROKEN_NO_BUSY_CHECK) && !defined(BROKEN_BUSY_LAST)
    busy_loads(t);
#endif
    sizes(t);
#ifdef BROKEN_BUSY_LAST
    busy_loads(t);
#endif
    decide()
}

/* drain_check: when a drainer waits and the pool is complete, bump
 * drain_seq (the wake itself is wait.pml's business). */
inline drain_check(t) {
    if
    :: drainers ->
        check(t);
        if
        :: complete -> dseq++; complete = 0
        :: else
        fi
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

/* mempool__wait_bit_update: WAIT = a drainer waits (no get waits in this
 * model), then mempool__caches_arm to match. */
inline wait_bit_update(t) {
    if
    :: drainers != waitb -> atomic { drained(t) -> waitb = drainers }
    :: else
    fi;
    if
    :: drainers && !armed -> armed = 1; set_steal(t, 1); heavy_barrier()
    :: !drainers && armed -> armed = 0; set_steal(t, 0)
    :: else
    fi
}

/* ---- puts to the stack ------------------------------------------------- */

/* mempool__put_slow of one block (no waiter: it goes to the stack), with
 * the drain check of mempool__give_locked. */
inline put_slow(t) {
    mutex_lock(t);
    atomic { drained(t) -> pool++; hold[t]--; latch() };
    drain_check(t);
    wait_bit_update(t);
    mutex_unlock(t)
}

/* The fast push (a CAS that fails while WAIT is set), else put_slow. */
inline put_stack(t) {
    atomic {
        drained(t) ->
        if
        :: !waitb -> pool++; hold[t]--; latch(); pushed = 1
        :: else
        fi
    };
    if
    :: !pushed -> put_slow(t)
    :: else
    fi;
    pushed = 0
}

/* ---- the owners -------------------------------------------------------- */

/* cache_empty_locked on the owner's own cache (honour, flush, thread exit),
 * the pool lock held. */
inline empty_cache(t) {
#ifdef BROKEN_ONE_BY_ONE
    /* Before 0.2.0: block by block, each hand-over followed by the drain check;
     * the count is zeroed at the end. */
    atomic { drained(t) -> load(t, V_CNT + t, n) };
    do
    :: n > 0 ->
        atomic { drained(t) -> pool++; dup[t]++ };
        drain_check(t);
        n--
    :: else -> break
    od;
    atomic { store(t, V_CNT + t, 0); dup[t] = 0 }
#else
    /* Fixed: count = 0 (a plain store, which the CAS of the push that
     * follows drains), all n blocks in one push, then one check. */
    atomic {
        drained(t) ->
        load(t, V_CNT + t, n);
        mem[V_CNT + t] = 0;
        pool = pool + n
    };
#ifdef BROKEN_HONOUR_NO_CHECK
    n = 0
#else
    n = 0;
    drain_check(t)
#endif
#endif
}

/* mempool__cache_honour (also mempool_flush and thread exit, which do the
 * same under the lock). */
inline honour(t) {
    mutex_lock(t);
    empty_cache(t);
    wait_bit_update(t);
    mutex_unlock(t)
}

/* cache_enter: busy = 1, then load steal; ok = 0 when armed, and then
 * busy = 0 again (release store). */
inline cache_enter(t) {
#ifdef ORDERED
    seq_store(t, V_BUSY + t, 1);
#else
    atomic { store(t, V_BUSY + t, 1) };
#endif
    atomic { load(t, V_STEAL + t, s); ok = !s; s = 0 };
    if
    :: !ok -> atomic { store(t, V_BUSY + t, 0) }
    :: else
    fi
}

/* cache_leave: busy = 0 (release store; ORDERED: an exchange), then load
 * steal, and honour the request if it is set. */
inline cache_leave(t) {
#ifdef ORDERED
    seq_store(t, V_BUSY + t, 0);
#else
    atomic { store(t, V_BUSY + t, 0) };
#endif
    atomic { load(t, V_STEAL + t, s) };
    if
    :: s -> s = 0; honour(t)
    :: else
    fi
}

/* A get: the hit path, with a refill when the magazine is empty
 * (mempool__cache_get); armed: honour. A get the cache cannot serve pops
 * the shared stack, or gives up (the slow get is left out). */
inline get_op(t) {
    cache_enter(t);
    if
    :: ok ->
        atomic { load(t, V_CNT + t, c) };
        if
        :: c == 0 ->
            /* cache_refill: one CAS takes up to BATCH blocks, then the
             * count store. */
            atomic {
                drained(t) ->
                if
                :: pool >= BATCH -> c = BATCH
                :: else -> c = pool
                fi;
                pool = pool - c;
                transit[t] = c
            };
            if
            :: c > 0 -> atomic { store(t, V_CNT + t, c); transit[t] = 0; latch() }
            :: else
            fi
        :: else
        fi;
        if
        :: c > 0 -> atomic { store(t, V_CNT + t, c - 1); hold[t]++; got = 1 }
        :: else
        fi;
        c = 0;
        cache_leave(t)
#ifdef BROKEN_CLOSED_GET
    :: else -> got = 1           /* ECANCELED, no honour */
#else
    :: else -> honour(t)
#endif
    fi;
    if
    :: !got -> atomic { drained(t) -> if :: pool > 0 -> pool--; hold[t]++ :: else fi }
    :: else
    fi;
    got = 0; ok = 0
}

/* A put: the hit path, with a spill when the magazine is full
 * (mempool__cache_put); armed, or a spill refused while WAIT is set: the
 * fast push, else put_slow. */
inline put_op(t) {
    cache_enter(t);
    if
    :: ok ->
        atomic { load(t, V_CNT + t, c) };
        if
        :: c < SZ -> room = 1
        :: else ->
            /* cache_spill: one CAS pushes the COLD bottom blocks (fails
             * while WAIT is set), then the count store. */
            atomic {
                drained(t) ->
                if
                :: !waitb -> pool = pool + COLD; dup[t] = COLD; room = 1
                :: else
                fi
            };
            if
            :: room -> c = c - COLD; atomic { store(t, V_CNT + t, c); dup[t] = 0 }
            :: else
            fi
        fi;
        if
        :: room -> atomic { store(t, V_CNT + t, c + 1); hold[t]--; latch() }
        :: else
        fi;
        c = 0;
        cache_leave(t)
    :: else -> honour(t)
    fi;
    if
    :: !room -> put_stack(t)
    :: else
    fi;
    room = 0; ok = 0
}

proctype owner(byte me) {
    byte c, n, ops, k, av, cc;
    bit s, ok, got, room, pushed, b, busy, complete;
    do
    :: ops < OPS ->
        if
        :: hold[me] > 0 -> put_op(me)
        :: get_op(me)
        :: honour(me)            /* mempool_flush */
        fi;
        ops++
    :: ops == OPS && hold[me] > 0 -> put_op(me)
    :: ops == OPS && hold[me] == 0 -> break
    od;
    /* The thread exits (its cache is emptied under the lock), or it stays
     * alive and idle, its cached blocks free but never flushed. */
    if
    :: honour(me)
    :: skip
    fi;
    atomic { drained(me) -> finished++ }
}

/* ---- the thread without a cache ---------------------------------------- */

proctype holder() {
    byte k, n, av, cc;
    bit pushed, b, busy, complete;
    do
    :: hold[TH] > 0 -> put_stack(TH)
    :: else -> break
    od;
    finished++
}

/* ---- the drainer ------------------------------------------------------- */

/* mempool_drain with no timeout. */
proctype drainer() {
    byte k, av, cc, seq;
    bit b, busy, complete;
#ifdef BROKEN_UNARMED_CHECK
    /* mempool_available before arming: no busy loads. */
    mutex_lock(TD);
    sizes(TD);
    decide();
    mutex_unlock(TD);
    if
    :: complete -> goto fin
    :: else
    fi;
#endif
    mutex_lock(TD);
    drainers = 1;
    wait_bit_update(TD);
    seq = dseq;
    /* From here on every put takes the lock and checks; this check covers
     * what landed before. */
    check(TD);
    if
    :: !complete ->
        mutex_unlock(TD);
        /* Sleeps until a check bumps drain_seq. Asleep for ever while
         * every thread has returned: an invalid end state (a lost drain). */
        dseq != seq;
        mutex_lock(TD)
    :: else
    fi;
    drainers = 0;
    wait_bit_update(TD);
    mutex_unlock(TD);
fin:
    complete = 0;
    finished++
}

/* ---- properties --------------------------------------------------------- */

#define EMPTY_BUFFERS (sb_n[0] == 0 && sb_n[1] == 0)
#define BLOCKS (pool + mem[V_CNT + 0] + mem[V_CNT + 1] + LOOSE - dup[0] - dup[1])

proctype monitor() {
end:
    atomic {
        !(!EMPTY_BUFFERS || BLOCKS == NB) ->
        assert(!EMPTY_BUFFERS || BLOCKS == NB)   /* property: conserved */
    }
}

init {
    byte k;
    atomic {
        /* Where the blocks start (none in the stack unless said):
         *   0: O0 caches 2, H holds the rest (a flush, an exit or an
         *      honour empties a cache while a block is out);
         *   1: O0 caches 2 and holds the rest (its put spills);
         *   2: the stack has 2, H holds the rest (O0's get refills);
         *   3: (two owners) O0 and O1 cache 1 each, H holds the rest. */
#ifdef START
        k = START;
#else
        if
        :: k = 0
        :: k = 1
        :: k = 2
        fi;
#endif
        if
        :: k == 0 -> mem[V_CNT + 0] = 2; hold[TH] = NB - 2
        :: k == 1 -> mem[V_CNT + 0] = 2; hold[0] = NB - 2
        :: k == 2 -> pool = 2; hold[TH] = NB - 2
        :: k == 3 -> mem[V_CNT + 0] = 1; mem[V_CNT + 1] = 1; hold[TH] = NB - 2
        fi;
        k = 0;
        run monitor();
        run buffers();
        run owner(0);
#if OWNERS > 1
        run owner(1);
#endif
        run holder();
        run drainer()
    }
    /* Every thread returns (a drainer asleep for ever leaves this blocked:
     * an invalid end state); then every block is back in the stack or a
     * cache and the caches are disarmed. */
    finished == OWNERS + 2;
    assert(LOOSE == 0 && BLOCKS == NB);   /* property: conserved */
    assert(!waitb && !armed && !drainers && !mem[V_STEAL + 0] && !mem[V_STEAL + 1])   /* property: armed */
}
