// leadscore-sync: delivers every committed stage change (an insert into leadscore.stage_history)
// to a user command, one JSON object on its standard input, read from a logical replication slot
// with pgoutput: at least once, in commit order, resuming where it stopped.
//
//   leadscore-sync [CONNINFO] --command CMD [--slot NAME] [--publication NAME] [--create] [--once]
//                  [--interval SECONDS] [--batch ROWS]
//
// It polls the slot through the SQL interface (pg_logical_slot_peek_binary_changes), runs the
// command for each change and advances the slot past a transaction only after the command
// succeeded for all of its changes; a failure stops it without advancing, so the next run
// delivers that transaction again. docs/cdc.md describes the guarantees.
#include <libpq-fe.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

volatile std::sig_atomic_t stop_signal = 0;
void on_stop_signal(int signo) { stop_signal = signo; }

struct Options {
    std::string conninfo;
    std::string slot = "leadscore_sync";
    std::string publication = "leadscore_stage_changes";
    std::string command;
    bool create = false;
    bool once = false;
    double interval = 1.0;
    int batch = 1000;
};

const char* const help_text =
    "leadscore-sync: delivers leadscore's stage changes (inserts into leadscore.stage_history) to a\n"
    "command, one JSON object per change on its standard input, read from a logical replication slot\n"
    "(pgoutput): every committed change at least once, in commit order, nothing from rolled-back\n"
    "transactions; after a restart it resumes where it stopped.\n"
    "\n"
    "usage: leadscore-sync [CONNINFO] --command CMD [--slot NAME] [--publication NAME] [--create]\n"
    "                      [--once] [--interval SECONDS] [--batch ROWS]\n"
    "\n"
    "  CONNINFO              libpq connection string or URI (default: the PG* environment variables)\n"
    "  -d, --dbname CONNINFO the same, as an option\n"
    "  -c, --command CMD     required: run CMD with /bin/sh -c for each change, the change as one JSON\n"
    "                        object on its standard input; a non-zero exit stops leadscore-sync\n"
    "                        (exit status 1) without advancing the slot: the next run delivers that\n"
    "                        change again\n"
    "  --slot NAME           logical replication slot (pgoutput) to read (default leadscore_sync)\n"
    "  --publication NAME    publication of leadscore.stage_history (default leadscore_stage_changes)\n"
    "  --create              create the publication (FOR TABLE leadscore.stage_history WITH\n"
    "                        (publish = 'insert')) and then the slot, each only when missing\n"
    "  --once                deliver what has been committed so far, then exit\n"
    "  --interval SECONDS    without --once: wait this long between polls (default 1)\n"
    "  --batch ROWS          read about this many pgoutput messages per poll (default 1000)\n"
    "  -h, --help            this help\n"
    "\n"
    "The JSON object (NULLs as null, no trailing newline):\n"
    "  {\"id\":42,\"model\":\"demo\",\"lead_id\":\"7\",\"from_stage\":\"IQL\",\"to_stage\":\"MQL\",\"score\":50,\n"
    "   \"changed_at\":\"2026-11-22 10:21:57.887999+00\",\"commit_lsn\":\"0/1A2B3C8\",\n"
    "   \"commit_time\":\"2026-11-22 10:21:57.89014+00\"}\n"
    "id is the idempotency key: a change can arrive more than once (after a kill, a crash or a failed\n"
    "command), never not at all. The slot moves past a transaction only when the command succeeded for\n"
    "every change of it. SIGTERM or SIGINT stops between changes (exit status 0).\n"
    "\n"
    "Needs wal_level = logical and a role with REPLICATION (or a superuser); --create also needs to own\n"
    "leadscore.stage_history (the extension owner). See docs/cdc.md.\n"
    "\n"
    "example:\n"
    "  leadscore-sync 'host=db dbname=crm user=sync' --create --command \\\n"
    "      'curl -sf -H \"Content-Type: application/json\" --data-binary @- https://crm.example/hooks/stage'\n";

[[noreturn]] void usage(const std::string& problem) {
    std::cerr << "leadscore-sync: " << problem << "\n"
              << "usage: leadscore-sync [CONNINFO] --command CMD [--slot NAME] [--publication NAME] [--create] "
                 "[--once] [--interval SECONDS] [--batch ROWS]   (--help for more)\n";
    std::exit(2);
}

Options parse_args(int argc, char** argv) {
    Options o;
    bool have_conninfo = false;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto value = [&](const char* name) -> std::string {
            if (i + 1 >= argc) usage(std::string(name) + " needs a value");
            return argv[++i];
        };
        if (a == "-h" || a == "--help") {
            std::cout << help_text;
            std::exit(0);
        } else if (a == "-c" || a == "--command") {
            o.command = value("--command");
        } else if (a == "--slot") {
            o.slot = value("--slot");
        } else if (a == "--publication") {
            o.publication = value("--publication");
        } else if (a == "--create") {
            o.create = true;
        } else if (a == "--once") {
            o.once = true;
        } else if (a == "--interval") {
            const std::string v = value("--interval");
            char* end = nullptr;
            o.interval = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !(o.interval >= 0) || o.interval > 86400)
                usage("--interval needs a number of seconds between 0 and 86400, not \"" + v + "\"");
        } else if (a == "--batch") {
            const std::string v = value("--batch");
            char* end = nullptr;
            const long n = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || n < 1 || n > 1000000)
                usage("--batch needs a number of rows between 1 and 1000000, not \"" + v + "\"");
            o.batch = static_cast<int>(n);
        } else if (a == "-d" || a == "--dbname") {
            o.conninfo = value("--dbname");
            have_conninfo = true;
        } else if (!a.empty() && a[0] == '-') {
            usage("unknown option " + a);
        } else if (!have_conninfo) {
            o.conninfo = a;
            have_conninfo = true;
        } else {
            usage("unexpected argument " + a);
        }
    }
    if (o.command.empty()) usage("--command is required");
    if (o.slot.empty() || o.publication.empty()) usage("--slot and --publication need a non-empty name");
    return o;
}

// An error reported by the server, with its SQLSTATE.
struct ServerError : std::runtime_error {
    ServerError(const std::string& message, std::string state) : std::runtime_error(message), sqlstate(std::move(state)) {}
    std::string sqlstate;
};

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

class Database {
public:
    explicit Database(const std::string& conninfo) : conn_(nullptr, &PQfinish) {
        const char* keys[] = {"dbname", "fallback_application_name", nullptr};
        const char* values[] = {conninfo.c_str(), "leadscore-sync", nullptr};
        conn_.reset(PQconnectdbParams(keys, values, 1));
        if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK)
            throw std::runtime_error("cannot connect: " + trim(conn_ ? PQerrorMessage(conn_.get()) : "out of memory"));
    }
    // Runs one statement; binary asks for binary result columns (bytea as raw bytes).
    Result exec(const std::string& sql, const std::vector<std::string>& params = {}, bool binary = false) {
        std::vector<const char*> values;
        for (const auto& p : params) values.push_back(p.c_str());
        Result res(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                nullptr, nullptr, binary ? 1 : 0),
                   &PQclear);
        const ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
            const char* state = res ? PQresultErrorField(res.get(), PG_DIAG_SQLSTATE) : nullptr;
            throw ServerError(trim(res ? PQresultErrorMessage(res.get()) : PQerrorMessage(conn_.get())),
                              state ? state : "");
        }
        return res;
    }
    // The first column of the first row as text; nullopt for no row or NULL.
    std::optional<std::string> value(const std::string& sql, const std::vector<std::string>& params = {}) {
        const Result res = exec(sql, params);
        if (PQntuples(res.get()) == 0 || PQgetisnull(res.get(), 0, 0)) return std::nullopt;
        return std::string(PQgetvalue(res.get(), 0, 0));
    }
    std::string identifier(const std::string& name) {
        std::unique_ptr<char, decltype(&PQfreemem)> quoted(PQescapeIdentifier(conn_.get(), name.c_str(), name.size()),
                                                           &PQfreemem);
        if (!quoted) throw std::runtime_error(trim(PQerrorMessage(conn_.get())));
        return quoted.get();
    }
    static std::string trim(std::string s) {
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        return s;
    }

private:
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
};

std::string lsn_text(std::uint64_t lsn) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn & 0xFFFFFFFFu));
    return buf;
}

// A pgoutput timestamp (microseconds since 2000-01-01 UTC) as PostgreSQL prints a timestamptz in UTC.
std::string timestamp_text(std::int64_t pg_micros) {
    const std::int64_t unix_micros = pg_micros + INT64_C(946684800) * 1000000;
    std::int64_t seconds = unix_micros / 1000000, micros = unix_micros % 1000000;
    if (micros < 0) micros += 1000000, seconds -= 1;
    const std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    std::string s = buf;
    if (micros != 0) {
        char frac[16];
        std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(micros));
        std::string f = frac;
        while (f.back() == '0') f.pop_back();
        s += f;
    }
    return s + "+00";
}

// Appends s as a JSON string; bytes that are not valid UTF-8 become U+FFFD.
void json_string(std::string& out, const std::string& s) {
    out += '"';
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    for (std::size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            switch (c) {
                case '"': out += "\\\""; break;
                case '\\': out += "\\\\"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                case '\b': out += "\\b"; break;
                case '\f': out += "\\f"; break;
                default:
                    if (c < 0x20) {
                        char esc[8];
                        std::snprintf(esc, sizeof esc, "\\u%04x", c);
                        out += esc;
                    } else {
                        out += static_cast<char>(c);
                    }
            }
            i++;
            continue;
        }
        // A multi-byte sequence: its length, the allowed range of its second byte, continuation bytes.
        std::size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) len = 3, lo = 0xA0;
        else if (c >= 0xE1 && c <= 0xEC) len = 3;
        else if (c == 0xED) len = 3, hi = 0x9F;  // no UTF-16 surrogates
        else if (c >= 0xEE && c <= 0xEF) len = 3;
        else if (c == 0xF0) len = 4, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else if (c == 0xF4) len = 4, hi = 0x8F;
        bool valid = len > 0 && i + len <= n && p[i + 1] >= lo && p[i + 1] <= hi;
        for (std::size_t k = 2; valid && k < len; k++) valid = p[i + k] >= 0x80 && p[i + k] <= 0xBF;
        if (valid) {
            out.append(s, i, len);
            i += len;
        } else {
            out += "\\ufffd";
            i++;
        }
    }
    out += '"';
}

// Whether s is a JSON number (numeric's text form is, except NaN and Infinity).
bool is_json_number(const std::string& s) {
    std::size_t i = 0;
    const auto digits = [&]() {
        const std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++;
        return i - start;
    };
    if (i < s.size() && s[i] == '-') i++;
    const std::size_t first = i;
    const std::size_t whole = digits();
    if (whole == 0 || (whole > 1 && s[first] == '0')) return false;
    if (i < s.size() && s[i] == '.') {
        i++;
        if (digits() == 0) return false;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) i++;
        if (digits() == 0) return false;
    }
    return i == s.size();
}

using Value = std::optional<std::string>;

void json_text(std::string& out, const Value& v) {
    if (v) json_string(out, *v);
    else out += "null";
}

void json_number(std::string& out, const Value& v) {
    if (!v) out += "null";
    else if (is_json_number(*v)) out += *v;
    else json_string(out, *v);  // NaN, Infinity: exact only as a string
}

// Reads a pgoutput message: network byte order, NUL-terminated strings.
class Message {
public:
    Message(const char* data, std::size_t size) : p_(reinterpret_cast<const unsigned char*>(data)), n_(size) {}
    std::uint64_t uint(int bytes) {
        need(static_cast<std::size_t>(bytes));
        std::uint64_t v = 0;
        for (int k = 0; k < bytes; k++) v = (v << 8) | p_[i_++];
        return v;
    }
    std::string cstring() {
        const void* end = std::memchr(p_ + i_, '\0', n_ - i_);
        if (!end) throw std::runtime_error("malformed pgoutput message: unterminated string");
        const std::size_t len = static_cast<std::size_t>(static_cast<const unsigned char*>(end) - (p_ + i_));
        std::string s(reinterpret_cast<const char*>(p_ + i_), len);
        i_ += len + 1;
        return s;
    }
    std::string bytes(std::size_t len) {
        need(len);
        std::string s(reinterpret_cast<const char*>(p_ + i_), len);
        i_ += len;
        return s;
    }

private:
    void need(std::size_t len) const {
        if (n_ - i_ < len) throw std::runtime_error("malformed pgoutput message: truncated");
    }
    const unsigned char* p_;
    std::size_t n_;
    std::size_t i_ = 0;
};

struct Relation {
    std::string schema, name;
    std::vector<std::string> columns;
};

struct Transaction {
    bool open = false;
    std::uint64_t commit_lsn = 0;
    std::int64_t commit_time = 0;
    long delivered = 0;  // changes of this transaction the command has taken
};

struct Totals {
    long changes = 0, transactions = 0;
};

// Thrown when the command fails; the slot is not advanced past the transaction.
struct CommandFailed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Runs the command with the JSON on its standard input; "" on success, else what went wrong.
std::string run_command(const std::string& command, const std::string& input) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        // The child: the pipe as stdin, default signal dispositions, then the shell.
        if (dup2(fds[0], STDIN_FILENO) < 0) _exit(127);
        std::signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    close(fds[0]);
    // A command that exits without reading all of its input is judged by its exit status alone.
    std::size_t written = 0;
    while (written < input.size()) {
        const ssize_t w = write(fds[1], input.data() + written, input.size() - written);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break;  // EPIPE
        written += static_cast<std::size_t>(w);
    }
    close(fds[1]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
    return "ended abnormally";
}

class Sync {
public:
    Sync(Database& db, const Options& o) : db_(db), o_(o) {}

    // Checks the server, takes the slot's session lock, creates (with --create) or checks the
    // publication and the slot.
    void prepare() {
        db_.exec("SET TimeZone = 'UTC'");
        db_.exec("SET DateStyle = 'ISO, YMD'");
        const std::string wal_level = db_.value("SELECT current_setting('wal_level')").value_or("?");
        if (wal_level != "logical")
            throw std::runtime_error("wal_level is " + wal_level +
                                     ": logical decoding needs wal_level = logical (ALTER SYSTEM SET wal_level = "
                                     "logical, then restart PostgreSQL)");
        const std::string database = db_.value("SELECT current_database()").value_or("?");
        if (!db_.value("SELECT to_regclass('leadscore.stage_history')::text"))
            throw std::runtime_error("leadscore is not installed in database \"" + database + "\"");
        if (!db_.value("SELECT 1 FROM pg_attribute WHERE attrelid = 'leadscore.stage_history'::regclass "
                       "AND attname = 'id' AND NOT attisdropped"))
            throw std::runtime_error("leadscore.stage_history has no id column: leadscore-sync needs leadscore 0.5.0 "
                                     "or later (ALTER EXTENSION leadscore UPDATE)");
        const std::string encoding = db_.value("SELECT current_setting('server_encoding')").value_or("?");
        if (encoding != "UTF8" && encoding != "SQL_ASCII")
            throw std::runtime_error("database \"" + database + "\" is encoded in " + encoding +
                                     ": leadscore-sync writes UTF-8 JSON and needs a UTF8 database");
        lock();
        const bool created_publication = prepare_publication();
        prepare_slot(created_publication);
    }

    // Delivers everything committed up to now (or until a stop signal); false when stopped.
    bool deliver_available(Totals& totals) {
        const std::string peek =
            "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, $2::int, 'proto_version', '1', "
            "'publication_names', $3)";
        // publication_names is parsed as a list of identifiers: quote the name.
        std::string quoted_publication = "\"";
        for (char c : o_.publication) quoted_publication += c == '"' ? std::string("\"\"") : std::string(1, c);
        quoted_publication += '"';
        for (;;) {
            if (stop_signal) return false;
            // Everything committed before this point is decoded by the peek below when it is not cut short.
            const std::string flushed = db_.value("SELECT pg_current_wal_flush_lsn()::text").value_or("0/0");
            Result res(nullptr, &PQclear);
            try {
                res = db_.exec(peek, {o_.slot, std::to_string(o_.batch), quoted_publication}, true);
            } catch (const ServerError& e) {
                if (e.sqlstate != "42704" || std::string(e.what()).find("publication") == std::string::npos) throw;
                throw std::runtime_error(std::string(e.what()) +
                                         "\nThe slot holds changes from before the publication was created, which "
                                         "pgoutput cannot decode: move it past them with SELECT "
                                         "pg_replication_slot_advance('" + o_.slot + "', pg_current_wal_lsn()) "
                                         "(docs/cdc.md: publication first, then the slot)");
            }
            const int rows = PQntuples(res.get());
            for (int r = 0; r < rows; r++) {
                if (!handle(PQgetvalue(res.get(), r, 0), static_cast<std::size_t>(PQgetlength(res.get(), r, 0)),
                            totals))
                    return false;
            }
            if (rows < o_.batch) {
                // Caught up. Move the slot over WAL without stage changes too (other tables' traffic,
                // transactions that were filtered out), else it would keep that WAL for nothing.
                advance(flushed);
                return true;
            }
        }
    }

private:
    void lock() {
        db_.exec("SET lock_timeout = '10s'");
        try {
            db_.exec("SELECT pg_advisory_lock(hashtext('leadscore-sync'), hashtext($1))", {o_.slot});
        } catch (const ServerError& e) {
            if (e.sqlstate != "55P03") throw;
            throw std::runtime_error("another leadscore-sync is delivering from slot \"" + o_.slot +
                                     "\" in this database (waited 10 s for it): run one at a time per slot");
        }
        db_.exec("RESET lock_timeout");
    }

    bool prepare_publication() {
        const Result res = db_.exec(
            "SELECT p.pubinsert, EXISTS (SELECT 1 FROM pg_publication_tables t WHERE t.pubname = p.pubname "
            "AND t.schemaname = 'leadscore' AND t.tablename = 'stage_history') "
            "FROM pg_publication p WHERE p.pubname = $1",
            {o_.publication});
        const std::string create = "CREATE PUBLICATION " + db_.identifier(o_.publication) +
                                   " FOR TABLE leadscore.stage_history WITH (publish = 'insert')";
        if (PQntuples(res.get()) == 0) {
            if (!o_.create)
                throw std::runtime_error("publication \"" + o_.publication +
                                         "\" does not exist: run with --create to create it and the slot, or: " +
                                         create);
            try {
                db_.exec(create);
            } catch (const ServerError& e) {
                throw std::runtime_error("cannot create publication \"" + o_.publication + "\" (needs a superuser "
                                         "or the owner of leadscore.stage_history): " + e.what());
            }
            std::cerr << "leadscore-sync: created publication \"" << o_.publication
                      << "\" FOR TABLE leadscore.stage_history WITH (publish = 'insert')\n";
            return true;
        }
        if (std::string(PQgetvalue(res.get(), 0, 1)) != "t")
            throw std::runtime_error("publication \"" + o_.publication +
                                     "\" does not publish leadscore.stage_history: ALTER PUBLICATION " +
                                     db_.identifier(o_.publication) +
                                     " ADD TABLE leadscore.stage_history, or name another one with --publication");
        if (std::string(PQgetvalue(res.get(), 0, 0)) != "t")
            throw std::runtime_error("publication \"" + o_.publication + "\" does not publish inserts: ALTER PUBLICATION " +
                                     db_.identifier(o_.publication) + " SET (publish = 'insert')");
        return false;
    }

    void prepare_slot(bool created_publication) {
        const Result res = db_.exec(
            "SELECT slot_type, plugin, database = current_database(), database, wal_status "
            "FROM pg_replication_slots WHERE slot_name = $1",
            {o_.slot});
        if (PQntuples(res.get()) == 0) {
            if (!o_.create)
                throw std::runtime_error("replication slot \"" + o_.slot +
                                         "\" does not exist: run with --create to create it (and the publication), "
                                         "or: SELECT pg_create_logical_replication_slot('" + o_.slot + "', 'pgoutput')");
            try {
                // Created after the publication has committed: pgoutput reads the publication as of
                // each decoded change, so the slot must not start before it.
                db_.exec("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", {o_.slot});
            } catch (const ServerError& e) {
                throw std::runtime_error("cannot create replication slot \"" + o_.slot +
                                         "\" (needs a superuser or a role with REPLICATION, and a free slot: "
                                         "max_replication_slots): " + e.what());
            }
            std::cerr << "leadscore-sync: created logical replication slot \"" << o_.slot
                      << "\" (pgoutput); stage changes committed from now on are delivered\n";
            return;
        }
        const auto field = [&](int c) { return PQgetisnull(res.get(), 0, c) ? std::string() : PQgetvalue(res.get(), 0, c); };
        if (field(0) != "logical" || field(1) != "pgoutput")
            throw std::runtime_error("replication slot \"" + o_.slot + "\" is not a logical slot of plugin pgoutput (" +
                                     field(0) + ", " + field(1) + "): name another one with --slot");
        if (field(2) != "t")
            throw std::runtime_error("replication slot \"" + o_.slot + "\" belongs to database \"" + field(3) +
                                     "\": connect to that database");
        if (field(4) == "lost")
            throw std::runtime_error("replication slot \"" + o_.slot +
                                     "\" has been invalidated (the WAL it needed was removed, see "
                                     "max_slot_wal_keep_size): drop it, create it again and reconcile the ids in "
                                     "leadscore.stage_change with what the command received (docs/cdc.md)");
        if (created_publication) {
            // The slot predates the publication: pgoutput cannot decode what was written before the
            // publication existed (nothing of it was published), so start after it.
            advance(*db_.value("SELECT pg_current_wal_lsn()::text"));
            std::cerr << "leadscore-sync: moved slot \"" << o_.slot << "\" past the new publication\n";
        }
    }

    // Confirms the slot up to lsn; never backwards.
    void advance(const std::string& lsn) {
        db_.exec("SELECT pg_replication_slot_advance(slot_name, $2::pg_lsn) FROM pg_replication_slots "
                 "WHERE slot_name = $1 AND confirmed_flush_lsn < $2::pg_lsn",
                 {o_.slot, lsn});
    }

    // Handles one pgoutput message; false when a stop signal came between changes.
    bool handle(const char* data, std::size_t size, Totals& totals) {
        Message m(data, size);
        const char type = static_cast<char>(m.uint(1));
        if (type == 'B') {
            txn_ = Transaction{};
            txn_.open = true;
            txn_.commit_lsn = m.uint(8);
            txn_.commit_time = static_cast<std::int64_t>(m.uint(8));
        } else if (type == 'R') {
            const auto oid = static_cast<std::uint32_t>(m.uint(4));
            Relation rel;
            rel.schema = m.cstring();
            rel.name = m.cstring();
            m.uint(1);  // replica identity
            const auto columns = m.uint(2);
            for (std::uint64_t c = 0; c < columns; c++) {
                m.uint(1);  // flags
                rel.columns.push_back(m.cstring());
                m.uint(4);  // type
                m.uint(4);  // typmod
            }
            relations_[oid] = rel;
        } else if (type == 'I') {
            const auto oid = static_cast<std::uint32_t>(m.uint(4));
            const auto it = relations_.find(oid);
            if (it == relations_.end())
                throw std::runtime_error("pgoutput sent an insert into relation " + std::to_string(oid) +
                                         " before describing it");
            if (it->second.schema != "leadscore" || it->second.name != "stage_history") return true;
            if (m.uint(1) != 'N') throw std::runtime_error("malformed pgoutput insert message");
            std::map<std::string, Value> row;
            const auto columns = m.uint(2);
            for (std::uint64_t c = 0; c < columns; c++) {
                const char kind = static_cast<char>(m.uint(1));
                Value v;
                if (kind == 't' || kind == 'b') v = m.bytes(static_cast<std::size_t>(m.uint(4)));
                if (c < it->second.columns.size()) row[it->second.columns[c]] = v;
            }
            if (!row.count("id") || !row["id"])
                throw std::runtime_error("leadscore.stage_history has no id column: leadscore-sync needs leadscore "
                                         "0.5.0 or later");
            if (stop_signal) {
                note_stop();
                return false;
            }
            deliver(row);
            txn_.delivered++;
            totals.changes++;
        } else if (type == 'C') {
            m.uint(1);  // flags
            m.uint(8);  // commit LSN
            const std::uint64_t end_lsn = m.uint(8);
            advance(lsn_text(end_lsn));
            if (txn_.open) totals.transactions++;
            txn_ = Transaction{};
        }
        // Other messages (types 'Y', origins, and updates, deletes, truncates of a wider publication) carry
        // no stage change.
        return true;
    }

    void deliver(std::map<std::string, Value>& row) {
        std::string json = "{\"id\":";
        json_number(json, row["id"]);
        json += ",\"model\":";
        json_text(json, row["model"]);
        json += ",\"lead_id\":";
        json_text(json, row["lead_id"]);
        json += ",\"from_stage\":";
        json_text(json, row["from_stage"]);
        json += ",\"to_stage\":";
        json_text(json, row["to_stage"]);
        json += ",\"score\":";
        json_number(json, row["score"]);
        json += ",\"changed_at\":";
        json_text(json, row["changed_at"]);
        json += ",\"commit_lsn\":";
        json_string(json, lsn_text(txn_.commit_lsn));
        json += ",\"commit_time\":";
        json_string(json, timestamp_text(txn_.commit_time));
        json += '}';
        const std::string problem = run_command(o_.command, json);
        if (problem.empty()) return;
        const std::string what = "the command " + problem + " on change id " + *row["id"] + " (transaction committed at " +
                                 lsn_text(txn_.commit_lsn) + "); the slot was not advanced past that transaction: "
                                 "the next run delivers it again from its first change";
        if (stop_signal) {
            // Stopping (a service manager signals the whole group): a clean stop, delivered again later.
            std::cerr << "leadscore-sync: stopping on signal " << stop_signal << ": " << what << "\n";
            throw StopDuringCommand();
        }
        throw CommandFailed(what);
    }

    void note_stop() const {
        if (txn_.delivered > 0)
            std::cerr << "leadscore-sync: stopping on signal " << stop_signal << " inside the transaction committed at "
                      << lsn_text(txn_.commit_lsn) << " after " << txn_.delivered
                      << " of its changes; the next run delivers it again from its first change\n";
    }

public:
    struct StopDuringCommand {};

private:
    Database& db_;
    const Options& o_;
    std::map<std::uint32_t, Relation> relations_;
    Transaction txn_;
};

// Sleeps up to seconds; false when a stop signal came.
bool pause(double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!stop_signal && std::chrono::steady_clock::now() < deadline) {
        const std::timespec step{0, 50 * 1000 * 1000};
        nanosleep(&step, nullptr);
    }
    return !stop_signal;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse_args(argc, argv);
    struct sigaction stop{};
    stop.sa_handler = on_stop_signal;
    sigemptyset(&stop.sa_mask);
    sigaction(SIGTERM, &stop, nullptr);
    sigaction(SIGINT, &stop, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    Totals totals;
    const auto summary = [&](const char* how) {
        std::cerr << "leadscore-sync: " << how << ": delivered " << totals.changes << " change(s) of "
                  << totals.transactions << " transaction(s) from slot \"" << o.slot << "\"\n";
    };
    try {
        Database db(o.conninfo);
        Sync sync(db, o);
        sync.prepare();
        for (;;) {
            const long before = totals.changes;
            const bool running = sync.deliver_available(totals);
            if (!running) break;
            if (o.once) {
                summary("done");
                return 0;
            }
            if (totals.changes != before)
                std::cerr << "leadscore-sync: delivered " << totals.changes - before << " change(s)\n";
            if (!pause(o.interval)) break;
        }
        summary(("stopped on signal " + std::to_string(stop_signal)).c_str());
        return 0;
    } catch (const Sync::StopDuringCommand&) {
        summary(("stopped on signal " + std::to_string(stop_signal)).c_str());
        return 0;
    } catch (const CommandFailed& e) {
        std::cerr << "leadscore-sync: " << e.what() << "\n";
        summary("stopped");
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "leadscore-sync: " << e.what() << "\n";
        return 1;
    }
}
