// hiredis's async context driven by Asio. hiredis asks for read and write interest through its
// ev hooks; each interest is one async_wait on a posix::stream_descriptor that owns a dup() of
// hiredis's socket (so that closing either never closes the other), and readiness calls
// redisAsyncHandleRead/Write on the strand. Asio's reactor re-arms a wait with EPOLL_CTL_MOD,
// so a wait started while the socket is already readable completes at once.
#include "redis_connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <utility>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

namespace portal_auth::detail {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto first_backoff = 100ms;
constexpr auto max_backoff = 2000ms;

redis_value copy_reply(const redisReply& r) {
    redis_value v;
    switch (r.type) {
    case REDIS_REPLY_STRING:
        v.type = redis_value::kind::string;
        v.str.assign(r.str, r.len);
        break;
    case REDIS_REPLY_STATUS:
        v.type = redis_value::kind::status;
        v.str.assign(r.str, r.len);
        break;
    case REDIS_REPLY_ERROR:
        v.type = redis_value::kind::error;
        v.str.assign(r.str, r.len);
        break;
    case REDIS_REPLY_INTEGER:
        v.type = redis_value::kind::integer;
        v.integer = r.integer;
        break;
    case REDIS_REPLY_ARRAY:
        v.type = redis_value::kind::array;
        v.elements.reserve(r.elements);
        for (std::size_t i = 0; i < r.elements; ++i)
            v.elements.push_back(copy_reply(*r.element[i]));
        break;
    default: // REDIS_REPLY_NIL
        break;
    }
    return v;
}

// Queues one command; false when hiredis refuses it (the context is going away).
bool send_command(redisAsyncContext* ctx, redisCallbackFn* fn, void* privdata,
                  const redis_command& command) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(command.size());
    lengths.reserve(command.size());
    for (const std::string& arg : command) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    return redisAsyncCommandArgv(ctx, fn, privdata, static_cast<int>(argv.size()), argv.data(),
                                 lengths.data()) == REDIS_OK;
}

} // namespace

// The descriptor Asio waits on, and which interests hiredis has asked for.
struct redis_connection::socket_watch {
    explicit socket_watch(const asio::strand<asio::any_io_executor>& ex) : descriptor(ex) {}
    asio::posix::stream_descriptor descriptor;
    bool wanted[2] = {false, false};  // [0] read, [1] write
    bool waiting[2] = {false, false}; // an async_wait is outstanding
    bool closed = false;
};

// The replies of one exec(), filled in by on_reply. Shared between the awaiting coroutine and
// hiredis's callbacks, which may come after the coroutine gave up.
struct redis_connection::pending {
    std::vector<redis_value> replies;
    std::size_t remaining = 0;
    bool failed = false;
    asio::steady_timer* waiter = nullptr; // null once the coroutine stopped waiting
};

namespace {
struct reply_slot {
    std::shared_ptr<void> keep; // the pending
    void* target;               // the same pending
    std::size_t index;
};
} // namespace

redis_connection::redis_connection(asio::any_io_executor ex, redis_connection_config config)
    : strand_(asio::make_strand(std::move(ex))), config_(std::move(config)),
      state_changed_(strand_), backoff_(strand_) {}

redis_connection::~redis_connection() {
    if (ctx_) {
        // No hook may call back into this object any more.
        ctx_->ev = {};
        ctx_->data = nullptr;
        ctx_->onDisconnect = nullptr;
        redisAsyncFree(ctx_);
        ctx_ = nullptr;
    }
}

void redis_connection::start() {
    asio::co_spawn(strand_, keep_connected(shared_from_this()), asio::detached);
}

void redis_connection::stop() {
    asio::post(strand_, [self = shared_from_this()] {
        self->stopping_ = true;
        self->backoff_.cancel();
        self->state_changed_.cancel();
        self->close_context();
    });
}

asio::awaitable<void> redis_connection::keep_connected(std::shared_ptr<redis_connection> self) {
    int failures = 0;
    while (!self->stopping_) {
        if (co_await self->connect_once()) {
            failures = 0;
            while (self->connected_ && !self->stopping_) {
                self->state_changed_.expires_at(clock::time_point::max());
                co_await self->state_changed_.async_wait(asio::as_tuple(asio::use_awaitable));
            }
        }
        if (self->stopping_)
            break;
        self->backoff_.expires_after(
            std::min<clock::duration>(first_backoff * (1 << failures), max_backoff));
        failures = std::min(failures + 1, 5);
        co_await self->backoff_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    self->close_context();
}

asio::awaitable<bool> redis_connection::connect_once() {
    // hiredis resolves names with a blocking getaddrinfo(); Asio's resolver does not block this
    // thread, and hiredis then gets a numeric address.
    asio::ip::tcp::resolver resolver(strand_);
    auto [ec, results] = co_await resolver.async_resolve(config_.host, std::to_string(config_.port),
                                                         asio::as_tuple(asio::use_awaitable));
    if (ec || results.empty() || stopping_)
        co_return false;
    const auto endpoint = results.begin()->endpoint();
    const std::string address = endpoint.address().to_string();

    redisAsyncContext* ctx = redisAsyncConnect(address.c_str(), endpoint.port());
    if (!ctx)
        co_return false;
    if (ctx->err) {
        redisAsyncFree(ctx);
        co_return false;
    }
    auto watch = std::make_shared<socket_watch>(strand_);
    const int fd = ::dup(ctx->c.fd);
    boost::system::error_code assign_ec;
    if (fd >= 0)
        watch->descriptor.assign(fd, assign_ec);
    if (fd < 0 || assign_ec) {
        if (fd >= 0)
            ::close(fd);
        redisAsyncFree(ctx);
        co_return false;
    }
    ctx_ = ctx;
    watch_ = watch;
    ctx->ev.data = this;
    ctx->ev.addRead = &hook_add_read;
    ctx->ev.delRead = &hook_del_read;
    ctx->ev.addWrite = &hook_add_write;
    ctx->ev.delWrite = &hook_del_write;
    ctx->ev.cleanup = &hook_cleanup;
    ctx->data = this;
    redisAsyncSetDisconnectCallback(ctx, &on_disconnect);
    redisAsyncSetConnectCallback(ctx, &on_connect); // asks for write readiness: the connect

    state_changed_.expires_after(config_.timeout);
    co_await state_changed_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (connected_ && !stopping_) {
        send_setup();
        co_return true;
    }
    close_context(); // refused, or no answer within the timeout
    co_return false;
}

void redis_connection::send_setup() {
    std::vector<redis_command> setup;
    if (!config_.password.empty())
        setup.push_back({"AUTH", config_.password});
    if (config_.db != 0)
        setup.push_back({"SELECT", std::to_string(config_.db)});
    for (const redis_command& c : config_.on_connect)
        setup.push_back(c);
    setup_pending_ = 0;
    for (const redis_command& c : setup) {
        if (!send_command(ctx_, &on_setup_reply, nullptr, c))
            return;
        ++setup_pending_;
    }
    ready_ = setup_pending_ == 0;
}

void redis_connection::close_context() {
    connected_ = false;
    ready_ = false;
    if (redisAsyncContext* ctx = std::exchange(ctx_, nullptr))
        redisAsyncFree(ctx); // pending callbacks run with no reply: store_unavailable
}

asio::awaitable<boost::system::result<std::vector<redis_value>>>
redis_connection::exec(std::vector<redis_command> commands, clock::time_point deadline) {
    return asio::co_spawn(strand_,
                          exec_on_strand(shared_from_this(), std::move(commands), deadline),
                          asio::use_awaitable);
}

asio::awaitable<boost::system::result<std::vector<redis_value>>>
redis_connection::exec_on_strand(std::shared_ptr<redis_connection> self,
                                 std::vector<redis_command> commands, clock::time_point deadline) {
    if (!self->ready_ || !self->ctx_ || commands.empty())
        co_return errc::store_unavailable;
    asio::steady_timer timer(self->strand_, deadline);
    auto p = std::make_shared<pending>();
    p->replies.resize(commands.size());
    p->waiter = &timer;
    // However this frame ends (even destroyed unfinished), late replies no longer see the timer.
    struct stop_waiting {
        pending& p;
        ~stop_waiting() { p.waiter = nullptr; }
    } guard{*p};

    for (std::size_t i = 0; i < commands.size(); ++i) {
        auto* slot = new reply_slot{p, p.get(), i};
        if (!send_command(self->ctx_, &on_reply, slot, commands[i])) {
            delete slot;
            co_return errc::store_unavailable;
        }
        ++p->remaining;
    }
    while (p->remaining > 0 && !p->failed) {
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!ec)
            break; // the deadline passed
    }
    if (p->failed || p->remaining > 0)
        co_return errc::store_unavailable;
    co_return std::move(p->replies);
}

void redis_connection::on_reply(redisAsyncContext*, void* reply, void* privdata) {
    std::unique_ptr<reply_slot> slot(static_cast<reply_slot*>(privdata));
    pending& p = *static_cast<pending*>(slot->target);
    if (reply)
        p.replies[slot->index] = copy_reply(*static_cast<redisReply*>(reply));
    else
        p.failed = true; // the connection went away
    --p.remaining;
    if ((p.failed || p.remaining == 0) && p.waiter)
        p.waiter->cancel();
}

void redis_connection::on_setup_reply(redisAsyncContext* ctx, void* reply, void*) {
    auto* r = static_cast<redisReply*>(reply);
    auto* self = static_cast<redis_connection*>(ctx->data);
    if (!r || !self)
        return;
    if (r->type != REDIS_REPLY_ERROR) {
        // Commands go out only once every setup command has succeeded.
        if (--self->setup_pending_ == 0)
            self->ready_ = true;
        return;
    }
    // Wrong password or database: drop the connection (and retry with backoff) rather than
    // send commands that can only fail.
    asio::post(self->strand_, [weak = self->weak_from_this()] {
        if (auto s = weak.lock())
            s->close_context();
    });
}

void redis_connection::on_connect(const redisAsyncContext* ctx, int status) {
    auto* self = static_cast<redis_connection*>(ctx->data);
    if (!self)
        return;
    if (status == REDIS_OK)
        self->connected_ = true;
    else
        self->ctx_ = nullptr; // hiredis frees it after this callback
    self->state_changed_.cancel();
}

void redis_connection::on_disconnect(const redisAsyncContext* ctx, int) {
    auto* self = static_cast<redis_connection*>(ctx->data);
    if (!self)
        return;
    self->ctx_ = nullptr; // hiredis frees it after this callback
    self->connected_ = false;
    self->ready_ = false;
    self->state_changed_.cancel();
}

void redis_connection::arm(std::shared_ptr<socket_watch> watch, bool write) {
    const int i = write ? 1 : 0;
    if (watch->closed || !watch->wanted[i] || watch->waiting[i])
        return;
    watch->waiting[i] = true;
    watch->descriptor.async_wait(
        write ? asio::posix::descriptor_base::wait_write : asio::posix::descriptor_base::wait_read,
        asio::bind_executor(strand_, [self = shared_from_this(), watch, write,
                                      i](boost::system::error_code ec) {
            watch->waiting[i] = false;
            if (ec || watch->closed || !watch->wanted[i] || self->watch_ != watch || !self->ctx_)
                return;
            if (write)
                redisAsyncHandleWrite(self->ctx_);
            else
                redisAsyncHandleRead(self->ctx_); // may free the context (connection lost)
            self->arm(watch, write);
        }));
}

void redis_connection::hook_add_read(void* p) {
    auto* self = static_cast<redis_connection*>(p);
    if (self->watch_) {
        self->watch_->wanted[0] = true;
        self->arm(self->watch_, false);
    }
}

void redis_connection::hook_del_read(void* p) {
    auto* self = static_cast<redis_connection*>(p);
    if (self->watch_)
        self->watch_->wanted[0] = false;
}

void redis_connection::hook_add_write(void* p) {
    auto* self = static_cast<redis_connection*>(p);
    if (self->watch_) {
        self->watch_->wanted[1] = true;
        self->arm(self->watch_, true);
    }
}

void redis_connection::hook_del_write(void* p) {
    auto* self = static_cast<redis_connection*>(p);
    if (self->watch_)
        self->watch_->wanted[1] = false;
}

void redis_connection::hook_cleanup(void* p) {
    auto* self = static_cast<redis_connection*>(p);
    if (auto watch = std::exchange(self->watch_, nullptr)) {
        watch->closed = true;
        boost::system::error_code ignored;
        watch->descriptor.close(ignored); // our dup(); hiredis closes its own descriptor
    }
}

} // namespace portal_auth::detail
