/* SPDX-License-Identifier: MIT */
/* Model of a shared pool's thread cache slot (src/shm_cache.c) against a
 * reclaiming get in another process and the repair after the slot's owner
 * dies (src/shm_recover.c), for spin. See model/README.md.
 *
 * Process O owns the only cache slot (SZ entries) and runs try_get,
 * try_get, put, put: hits on its slot without the lock, a refill (one block
 * out, up to SZ/2 into the slot) or a flush (the older half out) under the
 * lock, honouring a steal request when a call of its ends armed; it may be
 * killed between any two steps. Process R gets one block, blocking: under
 * the lock it takes a free block, else arms the slot and empties it unless
 * O is inside a call (the barrier across processes is exact here: this
 * model has no store buffers, model/cache.pml checks the fence itself),
 * else it waits, armed, for a put, an honour or O's death (then it
 * repairs); then it puts the block back. A repair frees every block word
 * naming a dead holder or a dead owner's slot, keeps a live slot's, and
 * rebuilds the free list from the words. Block words: FREE, OUTO, OUTR,
 * CACHED (in O's slot).
 *
 * Properties (each assert names one):
 *   one-owner   no block is held by O and R at once (a dead process
 *               holds nothing)
 *   conserved   at the end, after a last repair, every block is free and
 *               listed once the living put theirs back
 *   stuck       (an invalid end state) R waits for ever while a block sits
 *               free in O's slot
 *
 * Variants (cpp macros):
 *   BROKEN_NO_HONOUR       O does not honour a steal request it finds after
 *                          a hit (R skipped its slot because O was busy)
 *   BROKEN_REPAIR_LIVE     the repair frees the blocks of a live owner's
 *                          slot too
 *   BROKEN_DISARM_WAITING  R's failed attempt disarms the slot although R
 *                          is about to wait
 */

#define NB 2
#define SZ 2
#define FREE 0
#define OUTO 1
#define OUTR 2
#define CACHED 3
#define O 1
#define R 2

byte word[NB];
bool listed[NB];
byte count;              /* blocks on the free list */
byte mag[SZ];
byte cnt;                /* O's slot */
bool armed, busy;
bool slot_live;          /* the slot has an owner (O, until it dies or a repair frees it) */
byte lock;               /* 0, or the holder */
bool dead[3];
bool waiting;            /* R is queued (the queue is not empty) */
bool holdsO[NB], holdsR[NB]; /* ghosts */
bool finishedO, finishedR;

inline grab(p, b) {
    atomic {
        if
        :: p == O -> assert(!holdsR[b]) /* property: one-owner */; holdsO[b] = true
        :: else -> assert(dead[O] || !holdsO[b]) /* property: one-owner */; holdsR[b] = true
        fi
    }
}

/* Rebuilds the free list from the block words (under the lock). */
inline repair() {
    i = 0;
    do
    :: i < NB ->
        if
        :: word[i] == OUTO && dead[O] -> word[i] = FREE
#ifdef BROKEN_REPAIR_LIVE
        :: word[i] == CACHED -> word[i] = FREE
#else
        :: word[i] == CACHED && dead[O] -> word[i] = FREE
#endif
        :: else -> skip
        fi;
        i++
    :: else -> break
    od;
    count = 0;
    i = 0;
    do
    :: i < NB -> listed[i] = (word[i] == FREE); count = count + (word[i] == FREE); i++
    :: else -> break
    od;
    if
    :: dead[O] -> slot_live = false; cnt = 0; armed = false
    :: else -> skip
    fi
}

/* The lock: a dead holder's is taken over, with a repair (R only: O's
 * holder can only be R, which never dies). */
inline acquire(me) {
    do
    :: atomic { lock == 0 -> lock = me; break }
    :: atomic { lock != 0 && lock != me && dead[lock] -> lock = me }; repair(); break
    od
}

inline release() {
    lock = 0
}

/* Empties O's slot into the free list (under the lock): only entries
 * whose word says cached count. */
inline flush_slot() {
    j = 0;
    do
    :: j < cnt ->
        if
        :: word[mag[j]] == CACHED -> word[mag[j]] = FREE; listed[mag[j]] = true; count++
        :: else -> skip
        fi;
        j++
    :: else -> break
    od;
    cnt = 0
}

/* Takes a listed block for p (under the lock): b, or NB when none. */
inline take_free(p) {
    b = NB;
    i = 0;
    do
    :: i < NB && listed[i] && b == NB -> b = i; i++
    :: i < NB && !(listed[i] && b == NB) -> i++
    :: i == NB -> break
    od;
    if
    :: b < NB -> listed[b] = false; count--; word[b] = (p == O -> OUTO : OUTR); grab(p, b)
    :: else -> skip
    fi
}

inline honour() {
#ifdef BROKEN_NO_HONOUR
    skip
#else
    if
    :: armed && cnt > 0 -> acquire(O); flush_slot(); release()
    :: else -> skip
    fi
#endif
}

proctype owner() {
    byte i, j, b, k, got[2], ngot, was;
    {
        /* Two try_gets. */
        k = 0;
        do
        :: k < 2 ->
            busy = true;
            if
            :: !armed && cnt > 0 && word[mag[cnt - 1]] == CACHED ->
                b = mag[cnt - 1];
                cnt--;
                atomic { word[b] = OUTO; grab(O, b) };
                busy = false;
                got[ngot] = b; ngot++;
                if
                :: cnt > 0 -> honour()
                :: else -> skip
                fi
            :: else ->
                busy = false;
                was = armed;
                if
                :: was && cnt > 0 -> honour()
                :: else -> skip
                fi;
                /* The locked path: a refill when the slot is empty and
                 * usable, else a plain take; nobody passes a waiter. */
                acquire(O);
                if
                :: !waiting ->
                    take_free(O);
                    if
                    :: b < NB -> got[ngot] = b; ngot++;
                        if
                        :: !armed && cnt == 0 ->
                            i = 0;
                            do
                            :: i < NB && cnt < SZ / 2 && listed[i] ->
                                listed[i] = false; count--; word[i] = CACHED; mag[cnt] = i; cnt++; i++
                            :: i < NB && !(cnt < SZ / 2 && listed[i]) -> i++
                            :: else -> break
                            od
                        :: else -> skip
                        fi
                    :: else -> skip
                    fi
                :: else -> skip
                fi;
                release()
            fi;
            k++
        :: else -> break
        od;
        /* Put back what it got. */
        do
        :: ngot > 0 ->
            ngot--;
            b = got[ngot];
            busy = true;
            if
            :: !armed && cnt < SZ ->
                atomic { holdsO[b] = false; word[b] = CACHED };
                mag[cnt] = b;
                cnt++;
                busy = false;
                honour()
            :: else ->
                busy = false;
                acquire(O);
                if
                :: !armed && cnt == SZ ->
                    /* A flush: the older half out, the newer half down,
                     * then this block in. */
                    if
                    :: word[mag[0]] == CACHED -> word[mag[0]] = FREE; listed[mag[0]] = true; count++
                    :: else -> skip
                    fi;
                    mag[0] = mag[1];
                    cnt = 1;
                    atomic { holdsO[b] = false; word[b] = CACHED };
                    mag[cnt] = b;
                    cnt++
                :: else ->
                    /* Armed: the slot empties, the block goes to the
                     * free list (and so to the waiter). */
                    flush_slot();
                    atomic { holdsO[b] = false; word[b] = FREE };
                    listed[b] = true;
                    count++
                fi;
                release()
            fi
        :: else -> break
        od
    } unless { dead[O] }
    finishedO = true
}

proctype getter() {
    byte i, j, b;
    /* Attaching runs a recovery: with nobody dead, it must leave a live
     * owner's slot alone even while that owner is inside a call. */
    acquire(R);
    repair();
    release();
    do
    :: acquire(R);
        take_free(R);
        if
        :: b == NB && !armed ->
            /* Reclaim: arm, (barrier), empty the slot unless O is inside
             * a call. */
            armed = true;
            if
            :: !busy -> flush_slot()
            :: else -> skip
            fi;
            take_free(R)
        :: else -> skip
        fi;
        if
        :: b == NB -> waiting = true
#ifdef BROKEN_DISARM_WAITING
            ; armed = false
#endif
        :: else ->
            waiting = false;
            if
            :: count >= SZ -> armed = false  /* settle */
            :: else -> skip
            fi
        fi;
        release();
        if
        :: b < NB -> break
        :: else ->
            /* Asleep until a put, an honour, or the owner's death (which
             * a later look finds: then a recovery). */
            (count > 0 || dead[O]);
            if
            :: dead[O] && count == 0 -> acquire(R); repair(); release()
            :: else -> skip
            fi
        fi
    od;
    /* Put it back. */
    acquire(R);
    atomic { holdsR[b] = false; word[b] = FREE };
    listed[b] = true;
    count++;
    waiting = false;
    release();
    finishedR = true
}

active proctype reaper() {
    if
    :: atomic { !finishedO -> dead[O] = true }
    :: true -> skip
    fi
}

init {
    byte i;
    i = 0;
    do
    :: i < NB -> listed[i] = true; i++
    :: else -> break
    od;
    count = NB;
    slot_live = true;
    atomic {
        run owner();
        run getter()
    }
    finishedO;
    finishedR;
    acquire(R);
    repair();
    release();
    i = 0;
    do
    :: i < NB ->
        assert(dead[O] || word[i] != OUTO) /* property: conserved */;
        if
        :: word[i] == CACHED -> skip /* a live owner's slot keeps its blocks */
        :: else -> assert(word[i] == FREE && listed[i]) /* property: conserved */
        fi;
        i++
    :: else -> break
    od
}
