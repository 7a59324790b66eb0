/* SPDX-License-Identifier: MIT */
// The C++ face (include/mempool.hpp): handles put blocks back exactly once,
// typed objects are constructed and destroyed, timeouts and deadlines convert
// safely, bulk calls are all or nothing, and errors arrive as exceptions or
// error codes as documented.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "mempool.hpp"

using namespace std::chrono_literals;

static int failures;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                                \
        }                                                                              \
    } while (0)

// Copying a handle or a pool would put a block twice or destroy a pool twice.
static_assert(!std::is_copy_constructible_v<mempoolxx::block>);
static_assert(!std::is_copy_assignable_v<mempoolxx::block>);
static_assert(!std::is_copy_constructible_v<mempoolxx::pool>);
static_assert(std::is_nothrow_move_constructible_v<mempoolxx::pool>);
static_assert(std::is_nothrow_move_assignable_v<mempoolxx::pool>);
static_assert(!std::is_copy_constructible_v<mempoolxx::object_pool<int>::handle>);

static void test_version()
{
    CHECK(std::strcmp(mempool_version(), MEMPOOL_VERSION) == 0);
    std::string expected = std::to_string(MEMPOOL_VERSION_MAJOR) + "." +
                           std::to_string(MEMPOOL_VERSION_MINOR) + "." +
                           std::to_string(MEMPOOL_VERSION_PATCH);
    CHECK(expected == MEMPOOL_VERSION);
}

static void test_timeout_conversion()
{
    using mempoolxx::detail::timeout_ns;
    CHECK(timeout_ns(0ns) == 0);
    CHECK(timeout_ns(-1s) == 0);
    CHECK(timeout_ns(1us) == 1000);
    CHECK(timeout_ns(std::chrono::duration<double, std::nano>(1.5)) == 2);
    CHECK(timeout_ns(std::chrono::duration<double>(-0.5)) == 0);
    CHECK(timeout_ns(std::chrono::hours::max()) == -1);
    CHECK(timeout_ns(std::chrono::nanoseconds::max()) == -1);
    CHECK(timeout_ns(std::chrono::duration<double>(1e300)) == -1);
    CHECK(timeout_ns(std::chrono::duration<std::int64_t, std::ratio<1, 3>>(1)) == 333333334);

    using mempoolxx::detail::deadline_timespec;
    ::timespec at{};
    CHECK(deadline_timespec(1500ms, at) && at.tv_sec == 1 && at.tv_nsec == 500000000);
    CHECK(deadline_timespec(std::chrono::duration<double, std::nano>(0.5), at) &&
          at.tv_sec == 0 && at.tv_nsec == 1);
    CHECK(deadline_timespec(-5s, at) && at.tv_sec == 0 && at.tv_nsec == 0);
    CHECK(!deadline_timespec(std::chrono::hours::max(), at));
    CHECK(!deadline_timespec(std::chrono::nanoseconds::max(), at));
}

static void test_handles()
{
    mempoolxx::pool pool(4, 64);
    CHECK(pool.capacity() == 4 && pool.block_size() == 64);
    std::vector<mempoolxx::block> held;
    for (int i = 0; i < 4; i++)
        held.push_back(pool.get());
    CHECK(pool.available() == 0);
    for (auto &b : held)
        CHECK(b && pool.owns(b.get()) && pool.index(b.get()) < 4);

    // Nothing free: the throwing overloads return empty, the others say why.
    CHECK(!pool.try_get());
    std::error_code ec;
    CHECK(!pool.try_get(ec) && ec == std::errc::resource_unavailable_try_again);
    auto start = std::chrono::steady_clock::now();
    CHECK(!pool.get_for(20ms));
    CHECK(std::chrono::steady_clock::now() - start >= 20ms);
    CHECK(!pool.get_for(1ms, ec) && ec == std::errc::timed_out);

    // Resetting a handle puts its block back, once.
    held.pop_back();
    CHECK(pool.available() == 1);
    auto again = pool.get_for(1s, ec);
    CHECK(again && !ec);
    CHECK(pool.available() == 0);

    // A handle moved elsewhere still puts exactly once.
    mempoolxx::block moved = std::move(again);
    CHECK(!again && moved);
    moved.reset();
    CHECK(pool.available() == 1);

    // Moving the pool object keeps the handles valid.
    mempoolxx::pool other = std::move(pool);
    CHECK(!pool && other && other.available() == 1);
    held.clear();
    CHECK(other.available() == 4);
    CHECK(other.drain_for(0ns));

    // release() hands the raw block to the caller, adopt() takes it back.
    auto raw = other.get().release();
    CHECK(other.available() == 3);
    { auto adopted = other.adopt(raw); }
    CHECK(other.available() == 4);
}

static void test_waiting_and_close()
{
    mempoolxx::pool pool(1, 32);
    auto only = pool.get();
    std::atomic<bool> got{false};
    std::thread waiter([&] {
        auto b = pool.get(); // sleeps until the main thread lets go
        got = b != nullptr;
    });
    std::this_thread::sleep_for(20ms);
    CHECK(!got);
    only.reset();
    waiter.join();
    CHECK(got);
    CHECK(pool.available() == 1);

    pool.close();
    bool threw = false;
    try {
        (void)pool.get();
    } catch (const std::system_error &e) {
        threw = e.code() == std::errc::operation_canceled;
    }
    CHECK(threw);
    std::error_code ec;
    CHECK(!pool.get(ec) && ec == std::errc::operation_canceled);
    threw = false;
    try {
        (void)pool.get_for(1ms);
    } catch (const std::system_error &e) {
        threw = e.code() == std::errc::operation_canceled;
    }
    CHECK(threw);
}

static void test_create_errors()
{
    mempool_config bad{}; // capacity 0
    bool threw = false;
    try {
        mempoolxx::pool pool(bad);
    } catch (const std::system_error &e) {
        threw = e.code() == std::errc::invalid_argument;
    }
    CHECK(threw);
    std::error_code ec;
    auto pool = mempoolxx::pool::create(bad, ec);
    CHECK(!pool && ec == std::errc::invalid_argument);
    mempool_config good{};
    good.capacity = 2;
    good.block_size = 8;
    auto fine = mempoolxx::pool::create(good, ec);
    CHECK(fine && !ec);
}

// A container whose insertion throws after `limit` handles: the handles it
// took stay with it, every other block goes back to the pool.
struct limited_sink {
    std::vector<mempoolxx::block> *into;
    std::size_t limit;
    void push_back(mempoolxx::block &&b)
    {
        if (into->size() == limit)
            throw std::length_error("full");
        into->push_back(std::move(b));
    }
    using value_type = mempoolxx::block;
};

static void test_bulk()
{
    mempoolxx::pool pool(8, 16, 0, MEMPOOL_NO_CACHE);
    std::error_code ec;

    // Into a container of the caller's choice, or into a span of handles.
    std::vector<mempoolxx::block> vector;
    CHECK(pool.get_bulk(3, std::back_inserter(vector), 0ns, ec) && !ec);
    CHECK(vector.size() == 3 && pool.available() == 5);
    std::deque<mempoolxx::block> deque;
    pool.get_bulk(2, std::back_inserter(deque));
    CHECK(deque.size() == 2 && pool.available() == 3);
    mempoolxx::block span[3];
    CHECK(pool.get_bulk(3, span, ec) && !ec && span[2] && pool.available() == 0);

    // All or nothing: too few free gives nothing, and says why.
    std::vector<mempoolxx::block> none;
    CHECK(!pool.get_bulk(1, std::back_inserter(none), 0ns, ec));
    CHECK(ec == std::errc::resource_unavailable_try_again && none.empty());
    CHECK(!pool.get_bulk(1, std::back_inserter(none), 1ms));
    CHECK(!pool.get_bulk(1, std::back_inserter(none), 1ms, ec) && ec == std::errc::timed_out);
    bool threw = false;
    try {
        (void)pool.get_bulk(9, std::back_inserter(none), 1ms); // more than the capacity
    } catch (const std::system_error &e) {
        threw = e.code() == std::errc::invalid_argument;
    }
    CHECK(threw && none.empty());

    // put_bulk empties the handles it puts back; empty handles are skipped.
    span[1].reset();
    CHECK(pool.available() == 1);
    pool.put_bulk(std::begin(span), std::end(span));
    CHECK(!span[0] && !span[2] && pool.available() == 3);
    pool.put_bulk(deque.begin(), deque.end(), ec);
    CHECK(!ec && !deque[0] && pool.available() == 5);

    // A handle of another pool: nothing is put, every handle keeps its block.
    mempoolxx::pool other(1, 16);
    vector.push_back(other.get());
    pool.put_bulk(vector.begin(), vector.end(), ec);
    CHECK(ec == std::errc::invalid_argument && vector[0] && vector[3]);
    CHECK(pool.available() == 5 && other.available() == 0);
    threw = false;
    try {
        pool.put_bulk(vector.begin(), vector.end());
    } catch (const std::system_error &e) {
        threw = e.code() == std::errc::invalid_argument;
    }
    CHECK(threw && vector[0]);
    vector.clear();
    CHECK(pool.available() == 8 && other.available() == 1);

    // An output iterator that throws midway: no block is lost.
    std::vector<mempoolxx::block> kept;
    limited_sink sink{&kept, 2};
    threw = false;
    try {
        (void)pool.get_bulk(5, std::back_inserter(sink), 0ns, ec);
    } catch (const std::length_error &) {
        threw = true;
    }
    CHECK(threw && kept.size() == 2 && pool.available() == 6);
    kept.clear();
    CHECK(pool.available() == 8);

    // Waiting as long as needed: served by a put from another thread.
    std::vector<mempoolxx::block> all;
    pool.get_bulk(8, std::back_inserter(all));
    std::vector<mempoolxx::block> later;
    std::thread waiter([&] { pool.get_bulk(2, std::back_inserter(later)); });
    std::this_thread::sleep_for(20ms);
    CHECK(later.empty());
    all.resize(6);
    waiter.join();
    CHECK(later.size() == 2);
    pool.close();
    threw = false;
    try {
        pool.get_bulk(1, std::back_inserter(later));
    } catch (const std::system_error &e) {
        threw = e.code() == std::errc::operation_canceled;
    }
    CHECK(threw);
    CHECK(!pool.get_bulk(1, std::back_inserter(later), ec) && ec == std::errc::operation_canceled);
}

static void test_stats()
{
    mempoolxx::pool pool(8, 16, 0, MEMPOOL_NO_CACHE);
    pool.reset_stats();
    for (int i = 0; i < 3; i++)
        pool.get().reset();
    mempool_stats stats = pool.stats();
    CHECK(stats.gets == 3 && stats.puts == 3 && stats.out == 0);
    CHECK(!pool.print_stats(stdout));
}

static void test_deadlines()
{
    using clock = std::chrono::steady_clock;
    mempoolxx::pool pool(1, 32);
    auto only = pool.get_until(clock::now() + 1s);
    CHECK(only);

    // Never early; a passed deadline does not wait.
    auto deadline = clock::now() + 20ms;
    CHECK(!pool.get_until(deadline));
    CHECK(clock::now() >= deadline);
    std::error_code ec;
    CHECK(!pool.get_until(deadline, ec) && ec == std::errc::resource_unavailable_try_again);
    CHECK(!pool.get_until(clock::now() + 1ms, ec) && ec == std::errc::timed_out);
    CHECK(!pool.get_until(clock::time_point::min(), ec) &&
          ec == std::errc::resource_unavailable_try_again);
    // Any duration type of steady_clock; a far deadline waits for the put.
    std::chrono::time_point<clock, std::chrono::duration<double>> coarse = clock::now();
    CHECK(!pool.get_until(coarse + std::chrono::duration<double>(0.01)));
    std::thread putter([&] {
        std::this_thread::sleep_for(20ms);
        only.reset();
    });
    auto again = pool.get_until(clock::time_point::max(), ec);
    putter.join();
    CHECK(again && !ec);
    again.reset();

    pool.close();
    bool threw = false;
    try {
        (void)pool.get_until(clock::now() + 1s);
    } catch (const std::system_error &e) {
        threw = e.code() == std::errc::operation_canceled;
    }
    CHECK(threw);
    CHECK(!pool.get_until(clock::now(), ec) && ec == std::errc::operation_canceled);
}

// Objects that own heap memory: a leak or a missing destructor call shows up
// in the live count here and in the sanitizers' leak check.
struct Message {
    static inline int live = 0;
    std::string text;
    std::vector<int> values;
    Message(std::string t, int n) : text(std::move(t)), values(count(n), n) { live++; }
    static std::size_t count(int n)
    {
        if (n < 0)
            throw std::invalid_argument("negative");
        return static_cast<std::size_t>(n);
    }
    ~Message() { live--; }
};

struct alignas(64) Wide {
    unsigned char bytes[64];
};

static void test_objects()
{
    {
        mempoolxx::object_pool<Message> messages(2);
        auto a = messages.make("a long text that does not fit a small string buffer", 100);
        CHECK(a && a->values.size() == 100 && Message::live == 1);
        auto b = messages.make_for(10ms, "b", 1);
        CHECK(b && Message::live == 2);
        CHECK(!messages.make_for(1ms, "c", 1));
        std::error_code ec;
        CHECK(!messages.make_for(1ms, ec, "c", 1) && ec == std::errc::timed_out);
        b.reset();
        CHECK(Message::live == 1 && messages.available() == 1);

        // A throwing constructor leaves no object and no block out.
        bool threw = false;
        try {
            (void)messages.make("bad", -1);
        } catch (const std::invalid_argument &) {
            threw = true;
        }
        CHECK(threw && Message::live == 1 && messages.available() == 1);
    }
    CHECK(Message::live == 0);

    mempoolxx::object_pool<Wide> wide(3);
    auto w = wide.make();
    CHECK(reinterpret_cast<std::uintptr_t>(w.get()) % 64 == 0);
}

// Every make has a throwing and an error_code form, in the one argument
// order: timeout or deadline, then the error_code, then T's arguments.
static void test_object_makes()
{
    mempoolxx::object_pool<Message> messages(2);
    std::error_code ec;
    auto a = messages.try_make("a", 1);
    auto b = messages.make(ec, "b", 2);
    CHECK(a && b && !ec && b->values.size() == 2 && Message::live == 2);
    CHECK(!messages.try_make("c", 1));
    CHECK(!messages.try_make(ec, "c", 1) && ec == std::errc::resource_unavailable_try_again);
    auto deadline = std::chrono::steady_clock::now() + 10ms;
    CHECK(!messages.make_until(deadline, "c", 1));
    CHECK(std::chrono::steady_clock::now() >= deadline);
    CHECK(!messages.make_until(deadline, ec, "c", 1) &&
          ec == std::errc::resource_unavailable_try_again);
    CHECK(Message::live == 2);
    a.reset();
    auto c = messages.make_until(std::chrono::steady_clock::now() + 1s, ec, "c", 3);
    CHECK(c && !ec && c->text == "c" && Message::live == 2);

    // The error_code make waits, and reports close instead of throwing.
    std::thread closer([&] {
        std::this_thread::sleep_for(20ms);
        messages.close();
    });
    auto d = messages.make(ec, "d", 1);
    closer.join();
    CHECK(!d && ec == std::errc::operation_canceled);
    // T's constructor still throws through the error_code forms.
    mempoolxx::object_pool<Message> open(1);
    bool threw = false;
    try {
        (void)open.make(ec, "bad", -1);
    } catch (const std::invalid_argument &) {
        threw = true;
    }
    CHECK(threw && open.available() == 1);
}

static int misuse_count;
static void count_misuse(const char *, const void *, void *arg)
{
    ++*static_cast<int *>(arg);
}

// object_pool takes the whole configuration; native() is the C pool.
static void test_object_config()
{
    mempool_config config{};
    config.capacity = 64;
    config.cache_size = 8;
    config.alignment = 128;
    config.flags = MEMPOOL_CHECKED;
    config.on_misuse = count_misuse;
    config.arg = &misuse_count;
    mempoolxx::object_pool<Message> messages(config);
    CHECK(messages && messages.capacity() == 64 && messages.available() == 64);
    CHECK(::mempool_block_size(messages.native()) == sizeof(Message));
    auto m = messages.make("aligned", 1);
    CHECK(reinterpret_cast<std::uintptr_t>(m.get()) % 128 == 0);
    CHECK(messages.owns(m.get()) && messages.index(m.get()) < 64);
    // A second put of the block is refused and reported to on_misuse.
    void *raw = m.get();
    m.reset();
    CHECK(::mempool_put(messages.native(), raw) == EINVAL && misuse_count == 1);
    CHECK(messages.stats().refused_puts == 1);

    // An alignment below T's is raised to it.
    mempool_config small{};
    small.capacity = 2;
    small.alignment = 1;
    mempoolxx::object_pool<Wide> wide(small);
    auto w = wide.make();
    CHECK(reinterpret_cast<std::uintptr_t>(w.get()) % 64 == 0);

    // Generator mode does not make Ts: refused, by throwing or through ec.
    mempool_config generator{};
    generator.capacity = 2;
    generator.make = [](void *) -> void * { return nullptr; };
    bool threw = false;
    try {
        mempoolxx::object_pool<Message> bad(generator);
    } catch (const std::system_error &e) {
        threw = e.code() == std::errc::invalid_argument;
    }
    CHECK(threw);
    std::error_code ec;
    auto none = mempoolxx::object_pool<Message>::create(generator, ec);
    CHECK(!none && !none.native() && ec == std::errc::invalid_argument);
    auto fine = mempoolxx::object_pool<Message>::create(small, ec);
    CHECK(fine && !ec && fine.capacity() == 2);
    auto f = fine.make("moved", 1);
    mempoolxx::object_pool<Message> moved = std::move(fine);
    CHECK(!fine && moved.available() == 1);
    f.reset();
    CHECK(moved.available() == 2 && moved.drain_for(0ns));
}

// shared_pool: create, a second attachment, give and take with a handle
// type, recover, errors as codes and exceptions. Catches a take that does
// not adopt the block (it would leak) and a give that keeps the handle (the
// block would be put while in transit).
static void test_shared_pool()
{
    static_assert(!std::is_copy_constructible_v<mempoolxx::shared_pool>);
    static_assert(std::is_nothrow_move_constructible_v<mempoolxx::shared_pool>);
    mempool_config config{};
    config.capacity = 8;
    config.block_size = 64;
    std::error_code ec;
    auto pool = mempoolxx::shared_pool::create(nullptr, config, 0, ec);
    if (ec == std::errc::function_not_supported) {
        std::printf("test_cxx: shared pools not supported here, skipped\n");
        return;
    }
    CHECK(!ec && pool);
    CHECK(pool.fd() >= 0);
    auto other = mempoolxx::shared_pool::open_fd(pool.fd());
    CHECK(other.available() == 8);
    mempoolxx::transit_handle h;
    {
        auto b = pool.get();
        std::strcpy(static_cast<char *>(b.get()), "across");
        h = pool.give(b);
        CHECK(!b);
        CHECK(h);
    }
    CHECK(pool.available() == 7); // in transit, not put back by the handle
    {
        auto b = other.take(h);
        CHECK(b && std::strcmp(static_cast<char *>(b.get()), "across") == 0);
        auto again = other.take(h, ec);
        CHECK(!again && ec.value() == ESTALE);
        bool threw = false;
        try {
            (void)other.take(h);
        } catch (const std::system_error &e) {
            threw = e.code().value() == ESTALE;
        }
        CHECK(threw);
    }
    CHECK(pool.available() == 8);
    mempool_recovery r = pool.recover(MEMPOOL_RECOVER_TRANSIT);
    CHECK(r.processes == 0 && r.blocks == 0);
    auto missing = mempoolxx::shared_pool::open("/mempool-cxx-no-such-pool", ec);
    CHECK(!missing && ec == std::errc::no_such_file_or_directory);
    CHECK(mempoolxx::shared_pool::unlink("bad") == std::errc::invalid_argument);
}

int main()
{
    test_version();
    test_timeout_conversion();
    test_handles();
    test_waiting_and_close();
    test_create_errors();
    test_bulk();
    test_stats();
    test_deadlines();
    test_objects();
    test_object_makes();
    test_object_config();
    test_shared_pool();
    if (failures)
        std::fprintf(stderr, "%d check(s) failed\n", failures);
    else
        std::printf("test_cxx: all checks passed\n");
    return failures != 0;
}
