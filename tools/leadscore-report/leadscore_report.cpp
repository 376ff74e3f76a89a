// leadscore-report: writes one self-contained HTML file (inline SVG and CSS, no network) with
// a model's funnel, grade matrix (heat map), score histogram, conversion by score decile, stage
// entries over time and the top leads with their explanations.
//
//   leadscore-report [CONNINFO] --model NAME [--outcomes TABLE_OR_QUERY] [--as-of TIMESTAMP]
//                    [-o FILE]
//
// CONNINFO is a libpq connection string or URI; without it the PG* environment variables
// apply. Everything read from the database is HTML-escaped.
#include <libpq-fe.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Row = std::vector<std::optional<std::string>>;
using Rows = std::vector<Row>;

struct Options {
    std::string conninfo;
    std::string model;
    std::optional<std::string> outcomes;
    std::optional<std::string> as_of;
    std::string output = "leadscore-report.html";
};

const char* const usage_line =
    "usage: leadscore-report [CONNINFO] --model NAME [--outcomes TABLE_OR_QUERY] [--as-of TIMESTAMP] [-o FILE]\n";

[[noreturn]] void usage(const std::string& problem) {
    std::cerr << "leadscore-report: " << problem << "\n" << usage_line << "Try \"leadscore-report --help\".\n";
    std::exit(2);
}

// --help: every option parse_args accepts, one line each, and examples; tests/debian checks it.
[[noreturn]] void help() {
    std::cout
        << "leadscore-report writes one self-contained HTML report (no network needed to view it) of a leadscore\n"
           "model: funnel, grade matrix, score histogram, conversion by score decile, stage entries over time\n"
           "and the top leads with their explanations.\n\n"
        << usage_line
        << "\nOptions:\n"
           "  CONNINFO                     libpq connection string or URI (default: the PG* environment)\n"
           "  -d, --dbname CONNINFO        the same connection string or URI, given as an option\n"
           "  -m, --model NAME             the leadscore model to report on (required)\n"
           "  --outcomes TABLE_OR_QUERY    conversions (lead key, converted[, converted_at]): adds deciles, AUC\n"
           "  --as-of TIMESTAMP            with --outcomes: score as of then, count later conversions (default: now)\n"
           "  -o, --output FILE            the HTML file to write (default: leadscore-report.html)\n"
           "  -h, --help                   show this help and exit\n"
           "\nExamples:\n"
           "  leadscore-report 'host=/var/run/postgresql dbname=crm user=analyst' --model demo -o report.html\n"
           "  leadscore-report postgresql://analyst@db.example.com/crm -m demo --outcomes crm.outcome \\\n"
           "      --as-of 2026-09-01 --output report.html\n"
           "  PGDATABASE=crm leadscore-report --model demo \\\n"
           "      --outcomes 'SELECT lead_id, converted, converted_at FROM crm.conversions'\n"
           "\nExit status: 0 when the report was written, 1 on a database or file error, 2 on bad arguments.\n";
    std::exit(0);
}

Options parse_args(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto value = [&](const char* name) -> std::string {
            if (i + 1 >= argc) usage(std::string(name) + " needs a value");
            return argv[++i];
        };
        if (a == "--model" || a == "-m") o.model = value("--model");
        else if (a == "--outcomes") o.outcomes = value("--outcomes");
        else if (a == "--as-of") o.as_of = value("--as-of");
        else if (a == "-o" || a == "--output") o.output = value("-o");
        else if (a == "-d" || a == "--dbname") o.conninfo = value("-d");
        else if (a == "-h" || a == "--help") help();
        else if (!a.empty() && a[0] == '-') usage("unknown option " + a);
        else if (o.conninfo.empty()) o.conninfo = a;
        else usage("unexpected argument " + a);
    }
    if (o.model.empty()) usage("--model is required");
    return o;
}

class Database {
public:
    explicit Database(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str()), &PQfinish) {
        if (PQstatus(conn_.get()) != CONNECTION_OK)
            throw std::runtime_error("cannot connect: " + std::string(PQerrorMessage(conn_.get())));
    }
    Rows query(const std::string& sql, const std::vector<std::optional<std::string>>& params = {}) {
        std::vector<const char*> values;
        for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
        std::unique_ptr<PGresult, decltype(&PQclear)> res(
            PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                         nullptr, 0),
            &PQclear);
        if (PQresultStatus(res.get()) != PGRES_TUPLES_OK)
            throw std::runtime_error(PQresultErrorMessage(res.get()));
        Rows rows;
        for (int r = 0; r < PQntuples(res.get()); r++) {
            Row row;
            for (int c = 0; c < PQnfields(res.get()); c++)
                row.push_back(PQgetisnull(res.get(), r, c) ? std::nullopt
                                                           : std::optional<std::string>(PQgetvalue(res.get(), r, c)));
            rows.push_back(std::move(row));
        }
        return rows;
    }

private:
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
};

std::string esc(const std::optional<std::string>& s) {
    if (!s) return "";
    std::string out;
    for (char c : *s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

double num(const std::optional<std::string>& s) { return s ? std::strtod(s->c_str(), nullptr) : 0.0; }

std::string fmt(double v, int decimals = 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

struct Bar {
    std::string label;
    double value = 0;
    std::string note;
};

// Horizontal bars (one per row), label on the left, value on the right.
std::string horizontal_bars(const std::string& id, const std::vector<Bar>& bars, const std::string& color) {
    const int width = 760, label_w = 170, row_h = 30;
    const int height = std::max(1, static_cast<int>(bars.size())) * row_h + 10;
    double max = 0;
    for (const Bar& b : bars) max = std::max(max, b.value);
    std::ostringstream svg;
    svg << "<svg id=\"" << id << "\" class=\"chart\" width=\"" << width << "\" height=\"" << height
        << "\" viewBox=\"0 0 " << width << ' ' << height << "\" role=\"img\">";
    int y = 5;
    for (const Bar& b : bars) {
        const double w = max > 0 ? (width - label_w - 120) * b.value / max : 0;
        svg << "<text x=\"" << label_w - 8 << "\" y=\"" << y + 19 << "\" text-anchor=\"end\">" << esc(b.label)
            << "</text><rect class=\"bar\" x=\"" << label_w << "\" y=\"" << y + 4 << "\" width=\"" << fmt(std::max(w, 1.0), 1)
            << "\" height=\"" << row_h - 8 << "\" fill=\"" << color << "\"><title>" << esc(b.label) << ": "
            << esc(b.note) << "</title></rect><text x=\"" << label_w + w + 6 << "\" y=\"" << y + 19 << "\">"
            << esc(b.note) << "</text>";
        y += row_h;
    }
    svg << "</svg>";
    return svg.str();
}

// Vertical bars with labels under them.
std::string vertical_bars(const std::string& id, const std::vector<Bar>& bars, const std::string& color,
                          const std::string& axis_label) {
    const int width = 760, height = 280, bottom = 60, top = 20, left = 40;
    double max = 0;
    for (const Bar& b : bars) max = std::max(max, b.value);
    const double slot = bars.empty() ? 0 : static_cast<double>(width - left - 10) / bars.size();
    std::ostringstream svg;
    svg << "<svg id=\"" << id << "\" class=\"chart\" width=\"" << width << "\" height=\"" << height
        << "\" viewBox=\"0 0 " << width << ' ' << height << "\" role=\"img\">";
    svg << "<line x1=\"" << left << "\" y1=\"" << height - bottom << "\" x2=\"" << width - 10 << "\" y2=\""
        << height - bottom << "\" stroke=\"#888\"/>";
    for (std::size_t i = 0; i < bars.size(); i++) {
        const Bar& b = bars[i];
        const double h = max > 0 ? (height - bottom - top) * b.value / max : 0;
        const double x = left + slot * i + slot * 0.1;
        svg << "<rect class=\"bar\" x=\"" << fmt(x, 1) << "\" y=\"" << fmt(height - bottom - std::max(h, 1.0), 1)
            << "\" width=\"" << fmt(slot * 0.8, 1) << "\" height=\"" << fmt(std::max(h, 1.0), 1) << "\" fill=\""
            << color << "\"><title>" << esc(b.label) << ": " << esc(b.note) << "</title></rect>";
        svg << "<text x=\"" << fmt(x + slot * 0.4, 1) << "\" y=\"" << fmt(height - bottom - std::max(h, 1.0) - 4, 1)
            << "\" text-anchor=\"middle\" class=\"small\">" << esc(b.note) << "</text>";
        svg << "<text x=\"" << fmt(x + slot * 0.4, 1) << "\" y=\"" << height - bottom + 16
            << "\" text-anchor=\"middle\" class=\"small\">" << esc(b.label) << "</text>";
    }
    svg << "<text x=\"" << width / 2 << "\" y=\"" << height - 12 << "\" text-anchor=\"middle\">" << esc(axis_label)
        << "</text></svg>";
    return svg.str();
}

// Characters (UTF-8 code points) in s.
std::size_t length(const std::string& s) {
    return static_cast<std::size_t>(
        std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// At most max_chars characters (UTF-8 code points) of s, with an ellipsis when cut.
std::string shorten(const std::string& s, std::size_t max_chars) {
    std::size_t chars = 0;
    for (std::size_t i = 0; i < s.size(); i++) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;  // UTF-8 continuation byte
        if (++chars > max_chars) return s.substr(0, i) + "…";
    }
    return s;
}

struct Matrix {
    std::vector<std::string> rows, columns;  // labels, in drawing order
    std::vector<std::vector<double>> values;  // values[row][column]
};

// A heat map: one cell per row and column, darker with a higher value, the value written in it.
std::string heat_map(const std::string& id, const Matrix& m, const std::string& row_axis,
                     const std::string& column_axis) {
    const int width = 760, left = 160, top = 52, cell_h = 40;
    const std::size_t label_chars = 12;
    const int cell_w = m.columns.empty() ? 0 : std::min(120, (width - left - 10) / static_cast<int>(m.columns.size()));
    const int height = top + static_cast<int>(m.rows.size()) * cell_h + 10;
    double max = 0;
    for (const auto& row : m.values)
        for (double v : row) max = std::max(max, v);
    std::ostringstream svg;
    svg << "<svg id=\"" << id << "\" class=\"chart\" width=\"" << width << "\" height=\"" << height
        << "\" viewBox=\"0 0 " << width << ' ' << height << "\" role=\"img\">";
    const int grid_w = cell_w * static_cast<int>(m.columns.size());
    const int grid_h = cell_h * static_cast<int>(m.rows.size());
    svg << "<text x=\"" << left + grid_w / 2 << "\" y=\"16\" text-anchor=\"middle\">" << esc(column_axis) << "</text>";
    // The row axis label just left of the longest row label (about 8 px a character).
    std::size_t longest = 0;
    for (const std::string& r : m.rows) longest = std::max(longest, std::min(length(r), label_chars + 1));
    const int axis_x = std::max(18, left - 22 - 8 * static_cast<int>(longest));
    svg << "<text x=\"" << axis_x << "\" y=\"" << top + grid_h / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 "
        << axis_x << ' ' << top + grid_h / 2 << ")\">" << esc(row_axis) << "</text>";
    // Column labels as long as a cell is wide (about 8 px a character), row labels up to label_chars.
    const std::size_t column_chars = std::min(label_chars, static_cast<std::size_t>(std::max(3, cell_w / 8 - 2)));
    for (std::size_t c = 0; c < m.columns.size(); c++)
        svg << "<text x=\"" << left + cell_w * static_cast<int>(c) + cell_w / 2 << "\" y=\"" << top - 10
            << "\" text-anchor=\"middle\"><title>" << esc(m.columns[c]) << "</title>"
            << esc(shorten(m.columns[c], column_chars)) << "</text>";
    for (std::size_t r = 0; r < m.rows.size(); r++) {
        const int y = top + cell_h * static_cast<int>(r);
        svg << "<text x=\"" << left - 8 << "\" y=\"" << y + cell_h / 2 + 5 << "\" text-anchor=\"end\"><title>"
            << esc(m.rows[r]) << "</title>" << esc(shorten(m.rows[r], label_chars)) << "</text>";
        for (std::size_t c = 0; c < m.columns.size(); c++) {
            const double v = m.values[r][c];
            const double t = max > 0 ? v / max : 0;  // 0: lightest, 1: darkest
            // From #eef3fb (empty) to #1f4e9c (the fullest cell).
            const auto mix = [t](int from, int to) { return static_cast<int>(from + (to - from) * t + 0.5); };
            char fill[8];
            std::snprintf(fill, sizeof fill, "#%02x%02x%02x", mix(0xee, 0x1f), mix(0xf3, 0x4e), mix(0xfb, 0x9c));
            const int x = left + cell_w * static_cast<int>(c);
            svg << "<g><title>" << esc(row_axis) << ' ' << esc(m.rows[r]) << ", " << esc(column_axis) << ' '
                << esc(m.columns[c]) << ": " << fmt(v) << "</title><rect class=\"bar\" x=\"" << x << "\" y=\"" << y
                << "\" width=\"" << cell_w << "\" height=\"" << cell_h << "\" fill=\"" << fill
                << "\" stroke=\"#fff\" stroke-width=\"2\"/><text x=\"" << x + cell_w / 2 << "\" y=\""
                << y + cell_h / 2 + 5 << "\" text-anchor=\"middle\"" << (t > 0.5 ? " class=\"on-dark\"" : "") << ">"
                << fmt(v) << "</text></g>";
        }
    }
    svg << "</svg>";
    return svg.str();
}

std::string html_report(Database& db, const Options& o) {
    const auto model = std::optional<std::string>(o.model);
    if (db.query("SELECT 1 FROM leadscore.model WHERE name = $1", {model}).empty())
        throw std::runtime_error("model \"" + o.model + "\" does not exist");
    if (db.query("SELECT 1 FROM leadscore.tracking WHERE model = $1", {model}).empty())
        throw std::runtime_error("model \"" + o.model + "\" is not tracked: the report reads its stored scores");

    std::ostringstream body;
    const Rows total = db.query("SELECT count(*), round(avg(score), 1) FROM leadscore.lead_score WHERE model = $1", {model});
    body << "<p class=\"meta\">" << esc(total[0][0]) << " leads, mean score " << esc(total[0][1])
         << ". Generated " << esc(db.query("SELECT to_char(now(), 'YYYY-MM-DD HH24:MI TZ')")[0][0]) << ".</p>";

    std::vector<Bar> funnel;
    for (const Row& r : db.query("SELECT coalesce(stage, '(no stage)'), leads FROM leadscore.funnel WHERE model = $1 "
                                 "ORDER BY position NULLS LAST, stage", {model}))
        funnel.push_back(Bar{*r[0], num(r[1]), *r[1] + " leads"});
    body << "<h2>Funnel</h2><p>Leads per stage now (top of the list: furthest down the funnel).</p>"
         << horizontal_bars("funnel", funnel, "#3b7dd8");

    // Grades: fit grades down, engagement grades across, best first; NULL (below the lowest grade, or an
    // axis without grades) last.
    body << "<h2>Grades</h2>";
    if (db.query("SELECT to_regclass('leadscore.grade_matrix')")[0][0]) {
        const Rows cells = db.query(
            "SELECT m.fit_grade, m.engagement_grade, m.leads, "
            "dense_rank() OVER (ORDER BY f.min_value DESC NULLS LAST, m.fit_grade NULLS LAST), "
            "dense_rank() OVER (ORDER BY e.min_value DESC NULLS LAST, m.engagement_grade NULLS LAST) "
            "FROM leadscore.grade_matrix m "
            "LEFT JOIN leadscore.grade f ON f.model = m.model AND f.axis = 'fit' AND f.name = m.fit_grade "
            "LEFT JOIN leadscore.grade e ON e.model = m.model AND e.axis = 'engagement' AND e.name = m.engagement_grade "
            "WHERE m.model = $1", {model});
        if (cells.empty() || (cells.size() == 1 && !cells[0][0] && !cells[0][1])) {
            body << "<p>No grades defined for this model (leadscore.grade).</p>";
        } else {
            Matrix grades;
            for (const Row& r : cells) {
                const auto row = static_cast<std::size_t>(num(r[3])) - 1, column = static_cast<std::size_t>(num(r[4])) - 1;
                if (grades.rows.size() <= row) grades.rows.resize(row + 1);
                if (grades.columns.size() <= column) grades.columns.resize(column + 1);
                grades.rows[row] = r[0] ? *r[0] : "(none)";
                grades.columns[column] = r[1] ? *r[1] : "(none)";
            }
            // Cells the view leaves out (only possible in the "(none)" row or column) hold no leads.
            grades.values.assign(grades.rows.size(), std::vector<double>(grades.columns.size(), 0));
            for (const Row& r : cells)
                grades.values[static_cast<std::size_t>(num(r[3])) - 1][static_cast<std::size_t>(num(r[4])) - 1] = num(r[2]);
            body << "<p>Leads per fit grade (rows) and engagement grade (columns), best first; darker: more leads.</p>"
                 << heat_map("grades", grades, "fit grade", "engagement grade");
        }
    } else {
        body << "<p>Grades need leadscore 0.5.0 or later.</p>";
    }

    std::vector<Bar> hist;
    for (const Row& r : db.query("SELECT bucket, score_from, score_to, leads FROM leadscore.score_histogram "
                                 "WHERE model = $1 ORDER BY bucket", {model}))
        hist.push_back(Bar{fmt(num(r[1])) + "–" + fmt(num(r[2])), num(r[3]), *r[3]});
    body << "<h2>Score distribution</h2>" << vertical_bars("histogram", hist, "#6c5fc7", "score");

    body << "<h2>Conversion by score decile</h2>";
    if (o.outcomes) {
        const std::optional<std::string> as_of = o.as_of ? o.as_of : std::optional<std::string>("now");
        const Rows rows = db.query("SELECT section, bucket, leads, converted, conversion_rate, lift, value "
                                   "FROM leadscore.evaluate($1, $2, $3::timestamptz) "
                                   "WHERE section IN ('overall', 'decile') ORDER BY section, ordinal",
                                   {model, o.outcomes, as_of});
        std::vector<Bar> deciles;
        std::string auc = "n/a", rate = "n/a";
        for (const Row& r : rows) {
            if (*r[0] == "overall") {
                if (r[6]) auc = fmt(num(r[6]), 3);
                if (r[4]) rate = fmt(100 * num(r[4]), 1) + "%";
                continue;
            }
            deciles.push_back(Bar{"D" + *r[1], 100 * num(r[4]), fmt(100 * num(r[4]), 1) + "%"});
        }
        body << "<p>Scores as of " << esc(as_of) << " against conversions after it: ROC AUC <b id=\"auc\">" << esc(auc)
             << "</b>, overall conversion " << esc(rate) << ". Decile 1 holds the best-scored tenth.</p>"
             << vertical_bars("deciles", deciles, "#2a9d6f", "conversion rate by score decile");
    } else {
        body << "<p>Pass <code>--outcomes</code> (a table or query of lead key, converted, converted_at) to see how "
                "well the score predicts conversion.</p>";
    }

    std::vector<Bar> entries;
    for (const Row& r : db.query("SELECT to_char(week, 'YYYY-MM-DD'), sum(entered) FILTER (WHERE stage <> 'disqualified') "
                                 "FROM leadscore.stage_entries WHERE model = $1 GROUP BY week ORDER BY week "
                                 "LIMIT 52", {model}))
        entries.push_back(Bar{*r[0], num(r[1]), r[1] ? *r[1] : "0"});
    body << "<h2>Stage entries over time</h2><p>Leads entering a stage per week (from the stage history).</p>"
         << vertical_bars("entries", entries, "#d8883b", "week");

    body << "<h2>Top leads</h2><table id=\"top-leads\"><thead><tr><th>#</th><th>lead</th><th>score</th>"
            "<th>stage</th><th>top contributing rules</th></tr></thead><tbody>";
    for (const Row& r : db.query("SELECT rank, lead_id, score, stage, top_rules FROM leadscore.top_leads "
                                 "WHERE model = $1 ORDER BY rank LIMIT 20", {model}))
        body << "<tr><td>" << esc(r[0]) << "</td><td>" << esc(r[1]) << "</td><td>" << esc(r[2]) << "</td><td>"
             << esc(r[3]) << "</td><td>" << esc(r[4]) << "</td></tr>";
    body << "</tbody></table>";

    std::ostringstream html;
    html << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>leadscore report: " << esc(model)
         << "</title><style>"
            "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:820px;color:#222}"
            "h1{font-size:24px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}"
            "svg text{font-size:13px;fill:#333}svg text.small{font-size:11px}svg text.on-dark{fill:#fff}"
            ".meta{color:#666}"
            "table{border-collapse:collapse;width:100%;font-size:13px}td,th{border-bottom:1px solid #eee;"
            "padding:4px 6px;text-align:left}"
            "</style></head><body><h1>leadscore report: " << esc(model) << "</h1>"
         << body.str()
         // A render check for tests: the drawn size of every chart, written into the page.
         << "<pre id=\"render-check\" style=\"display:none\"></pre><script>"
            "(function(){var out=[];document.querySelectorAll('svg.chart').forEach(function(s){"
            "var r=s.getBBox();out.push(s.id+' '+Math.round(r.width)+'x'+Math.round(r.height)+' bars='+"
            "s.querySelectorAll('rect.bar').length);});"
            "document.getElementById('render-check').textContent=out.join('\\n');})();"
            "</script></body></html>\n";
    return html.str();
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse_args(argc, argv);
    try {
        Database db(o.conninfo);
        const std::string html = html_report(db, o);
        std::ofstream out(o.output, std::ios::binary);
        if (!out) throw std::runtime_error("cannot write " + o.output);
        out << html;
        out.close();
        if (!out) throw std::runtime_error("cannot write " + o.output);
        std::cout << "leadscore-report: wrote " << o.output << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "leadscore-report: " << e.what() << "\n";
        return 1;
    }
}
