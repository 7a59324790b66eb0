/* SPDX-License-Identifier: MIT */
/* Model of a shared pool's crash recovery (src/shm_path.c, src/shm_recover.c),
 * for spin: processes that get and put blocks under the segment's lock word
 * and die at any step, and a survivor that takes the lock over from a dead
 * holder and repairs. See model/README.md for the abstraction.
 *
 * Processes P1 and P2 each get a block and put it back, ROUNDS times; each
 * may be killed (a nondeterministic kill by the `reaper`, at most KILLS in
 * all) between any two of its steps, and a dead process does nothing more.
 * Every change of the shared state is one step: the lock word, the free
 * list's membership (`listed`) and count, and the block words (`owner`, 0
 * free, else the holder's id). Liveness is the kernel's answer, exact: a
 * process is dead once killed. A survivor S (process 3) gets and puts too;
 * when it finds the lock held by a dead process it takes it over and
 * repairs: every block word naming a dead process becomes free, and the
 * free list and its count are rebuilt from the block words alone.
 *
 * Properties (each assert names one):
 *   one-owner         a block is never held by two processes at once
 *   mutual-exclusion  two live processes are never inside the lock at once
 *   conserved         at the end, after a last repair, every block is free
 *                     and listed once the live ones put theirs back
 *   list-matches      the free list holds exactly the free blocks after a
 *                     repair, and a get never takes an unlisted block
 *
 * Variants (cpp macros):
 *   ROUNDS=n, KILLS=n   the size (default 1 and 1; NB blocks = 2)
 *   BROKEN_TRUST_LIST   the repair keeps the free list as it finds it
 *                       instead of rebuilding it from the block words
 *   BROKEN_STEAL_LIVE   a contender takes the lock over without asking
 *                       whether its holder is dead
 */

#ifndef ROUNDS
#define ROUNDS 1
#endif
#ifndef KILLS
#define KILLS 1
#endif
#define NB 2
#define NP 4            /* ids 1..3; 0: nobody */

byte lock;              /* 0, or the holder's id */
byte owner[NB];         /* 0 free, else the holder's id */
bool listed[NB];        /* on the free list */
byte count;             /* the free list's count */
bool dead[NP];
bool holds[NP * NB];    /* ghost: process p believes it holds block i */
byte kills;

#define held(p, i) holds[(p) * NB + (i)]
bool in[NP];            /* ghost: inside the lock */
byte finished;

/* Under the lock: rebuild everything from the block words. */
inline repair() {
    i = 0;
    do
    :: i < NB ->
        if
        :: owner[i] != 0 && dead[owner[i]] -> owner[i] = 0
        :: else -> skip
        fi;
        i++
    :: else -> break
    od;
#ifndef BROKEN_TRUST_LIST
    count = 0;
    i = 0;
    do
    :: i < NB -> listed[i] = (owner[i] == 0); count = count + (owner[i] == 0); i++
    :: else -> break
    od;
#endif
    i = 0;
    do
    :: i < NB -> assert(listed[i] == (owner[i] == 0)) /* property: list-matches */; i++
    :: else -> break
    od
}

/* Takes the lock; a dead holder's is taken over, with a repair. */
inline acquire(me) {
    do
    :: atomic { lock == 0 -> lock = me; break }
#ifdef BROKEN_STEAL_LIVE
    :: atomic { lock != 0 && lock != me -> lock = me }; repair(); break
#else
    :: atomic { lock != 0 && dead[lock] -> lock = me }; repair(); break
#endif
    od;
    atomic {
        in[me] = true;
        assert((in[1] && !dead[1]) + (in[2] && !dead[2]) + (in[3] && !dead[3]) == 1) /* property: mutual-exclusion */
    }
}

inline release(me) {
    atomic { in[me] = false; lock = 0 }
}

proctype process(byte me) {
    byte r, i, got;
    {
        r = 0;
        do
        :: r < ROUNDS ->
            acquire(me);
            /* get: pick a listed block, unlist it, count it, own it */
            got = NB;
            i = 0;
            do
            :: i < NB && listed[i] && got == NB -> got = i; i++
            :: i < NB && !(listed[i] && got == NB) -> i++
            :: i == NB -> break
            od;
            if
            :: got < NB ->
                assert(owner[got] == 0) /* property: list-matches */;
                listed[got] = false;
                count--;
                owner[got] = me;
                atomic {
                    i = 0;
                    do
                    :: i < NP -> assert(i == me || dead[i] || !held(i, got)) /* property: one-owner */; i++
                    :: else -> break
                    od;
                    held(me, got) = true
                }
            :: else -> skip
            fi;
            release(me);
            if
            :: got < NB ->
                acquire(me);
                /* put: the word first, then the list */
                atomic { held(me, got) = false; owner[got] = 0 };
                listed[got] = true;
                count++;
                release(me)
            :: else -> skip
            fi;
            r++
        :: else -> break
        od
    } unless { dead[me] }
    /* A dead process's lock stays held until someone takes it over. */
    atomic {
        if
        :: in[me] -> in[me] = false
        :: else -> skip
        fi;
        finished++
    }
}

/* Kills P1 or P2 at any moment, at most KILLS times. */
active proctype reaper() {
    do
    :: kills < KILLS -> atomic { dead[1] = true; kills++ }
    :: kills < KILLS -> atomic { dead[2] = true; kills++ }
    :: true -> break
    od
}

init {
    byte i;
    i = 0;
    do
    :: i < NB -> listed[i] = true; i++
    :: else -> break
    od;
    count = NB;
    atomic {
        run process(1);
        run process(2);
        run process(3)
    }
    /* The end: everyone finished or dead. */
    finished == 3;
    acquire(3);
    repair();
    release(3);
    i = 0;
    do
    :: i < NB ->
        assert(owner[i] == 0 && listed[i]) /* property: conserved */;
        i++
    :: else -> break
    od;
    assert(count == NB) /* property: conserved */
}
