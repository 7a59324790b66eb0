/* SPDX-License-Identifier: MIT */
// The C++ face (include/mempool.hpp): handles put blocks back exactly once,
// typed objects are constructed and destroyed, timeouts convert safely and
// errors arrive as exceptions or error codes as documented.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
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

static void test_bulk_and_stats()
{
    mempoolxx::pool pool(8, 16, 0, MEMPOOL_NO_CACHE);
    std::error_code ec;
    auto blocks = pool.get_bulk(5, 0ns, ec);
    CHECK(!ec && blocks.size() == 5 && pool.available() == 3);
    auto none = pool.get_bulk(4, 0ns, ec);
    CHECK(ec == std::errc::resource_unavailable_try_again && none.empty());
    blocks.clear();
    CHECK(pool.available() == 8);

    pool.reset_stats();
    for (int i = 0; i < 3; i++)
        pool.get().reset();
    mempool_stats stats = pool.stats();
    CHECK(stats.gets == 3 && stats.puts == 3 && stats.out == 0);
    CHECK(!pool.print_stats(stdout));
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
        CHECK(!messages.make_for(ec, 1ms, "c", 1) && ec == std::errc::timed_out);
        b.reset();
        CHECK(Message::live == 1 && messages.raw_pool().available() == 1);

        // A throwing constructor leaves no object and no block out.
        bool threw = false;
        try {
            (void)messages.make("bad", -1);
        } catch (const std::invalid_argument &) {
            threw = true;
        }
        CHECK(threw && Message::live == 1 && messages.raw_pool().available() == 1);
    }
    CHECK(Message::live == 0);

    mempoolxx::object_pool<Wide> wide(3);
    auto w = wide.make();
    CHECK(reinterpret_cast<std::uintptr_t>(w.get()) % 64 == 0);
}

int main()
{
    test_version();
    test_timeout_conversion();
    test_handles();
    test_waiting_and_close();
    test_create_errors();
    test_bulk_and_stats();
    test_objects();
    if (failures)
        std::fprintf(stderr, "%d check(s) failed\n", failures);
    else
        std::printf("test_cxx: all checks passed\n");
    return failures != 0;
}
