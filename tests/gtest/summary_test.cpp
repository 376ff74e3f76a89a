#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/summary.hpp"
#include "test_util.hpp"

using namespace leadscore;
using namespace leadscore_test;

namespace {

Summary roundtrip(const Summary& s) {
    const std::string bytes = s.serialize();
    return Summary::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

Summary from_bytes(const std::string& bytes) {
    return Summary::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

void expect_corrupt(const std::string& bytes) {
    try {
        from_bytes(bytes);
        ADD_FAILURE() << "accepted corrupt summary of " << bytes.size() << " bytes";
    } catch (const UserError& e) {
        EXPECT_EQ(e.sqlstate(), sqlstate::kDataCorrupted);
    }
}

using TV = std::vector<Timestamp>;

}  // namespace

TEST(Summary, EmptyByDefault) {
    Summary s;
    EXPECT_TRUE(s.empty());
    EXPECT_EQ(s.occurrence_count(), 0u);
    EXPECT_TRUE(s.rule_ids().empty());
    EXPECT_TRUE(s.occurrences(1).empty());
}

TEST(Summary, AddKeepsSortedOccurrences) {
    Summary s;
    s.add(2, 300);
    s.add(1, 50);
    s.add(2, 100);
    s.add(2, 200);
    EXPECT_FALSE(s.empty());
    EXPECT_EQ(s.occurrence_count(), 4u);
    EXPECT_EQ(s.rule_ids(), (std::vector<std::int64_t>{1, 2}));
    EXPECT_EQ(s.occurrences(2), (TV{100, 200, 300}));
    EXPECT_EQ(s.occurrences(1), (TV{50}));
    EXPECT_TRUE(s.occurrences(3).empty());
    // Adding after reading still keeps the order.
    s.add(2, 150);
    EXPECT_EQ(s.occurrences(2), (TV{100, 150, 200, 300}));
}

TEST(Summary, DuplicatesAreAMultiset) {
    Summary s;
    s.add(1, 10);
    s.add(1, 10);
    s.add(1, 10);
    EXPECT_EQ(s.occurrence_count(), 3u);
    EXPECT_EQ(s.occurrences(1), (TV{10, 10, 10}));
    EXPECT_TRUE(s.remove(1, 10));
    EXPECT_EQ(s.occurrences(1), (TV{10, 10}));
    EXPECT_TRUE(s.remove(1, 10));
    EXPECT_TRUE(s.remove(1, 10));
    EXPECT_FALSE(s.remove(1, 10));
    EXPECT_TRUE(s.empty());
    EXPECT_TRUE(s.rule_ids().empty());
}

TEST(Summary, RemoveMissingOccurrenceReturnsFalse) {
    Summary s;
    EXPECT_FALSE(s.remove(1, 10));  // empty summary
    s.add(1, 10);
    s.add(1, 30);
    EXPECT_FALSE(s.remove(2, 10));   // unknown rule
    EXPECT_FALSE(s.remove(1, 20));   // time between two occurrences
    EXPECT_FALSE(s.remove(1, 5));    // before all
    EXPECT_FALSE(s.remove(1, 40));   // after all
    EXPECT_EQ(s.occurrence_count(), 2u);
    EXPECT_TRUE(s.remove(1, 30));
    EXPECT_EQ(s.occurrences(1), (TV{10}));
    EXPECT_TRUE(s.remove(1, 10));
    EXPECT_TRUE(s.empty());
    EXPECT_TRUE(s.occurrences(1).empty());
}

TEST(Summary, RemoveAfterUnsortedAdds) {
    Summary s;
    s.add(1, 30);
    s.add(1, 10);
    s.add(1, 20);
    EXPECT_TRUE(s.remove(1, 20));
    EXPECT_EQ(s.occurrences(1), (TV{10, 30}));
}

TEST(Summary, MergeIsOrderIndependent) {
    Summary a, b, c;
    a.add(1, 100);
    a.add(2, -5);
    b.add(1, 50);
    b.add(1, 100);
    b.add(3, 7);
    c.add(2, -5);
    c.add(-4, 1);

    Summary abc = a;
    abc.merge(b);
    abc.merge(c);
    Summary cba = c;
    cba.merge(b);
    cba.merge(a);
    Summary bac = b;
    bac.merge(a);
    bac.merge(c);
    EXPECT_TRUE(abc == cba);
    EXPECT_TRUE(abc == bac);
    EXPECT_EQ(abc.serialize(), cba.serialize());

    // Same as adding everything to one summary in any order.
    Summary once;
    once.add(3, 7);
    once.add(1, 100);
    once.add(2, -5);
    once.add(-4, 1);
    once.add(1, 50);
    once.add(2, -5);
    once.add(1, 100);
    EXPECT_TRUE(abc == once);
    EXPECT_EQ(abc.occurrence_count(), 7u);
    EXPECT_EQ(abc.occurrences(1), (TV{50, 100, 100}));
    EXPECT_EQ(abc.occurrences(2), (TV{-5, -5}));
    EXPECT_EQ(abc.rule_ids(), (std::vector<std::int64_t>{-4, 1, 2, 3}));

    // Merging an empty summary changes nothing, in either direction.
    Summary empty;
    Summary x = a;
    x.merge(empty);
    EXPECT_TRUE(x == a);
    Summary y;
    y.merge(a);
    EXPECT_TRUE(y == a);
}

TEST(Summary, EqualityIgnoresEmptiedRules) {
    Summary a, b;
    a.add(1, 10);
    a.add(2, 20);
    EXPECT_TRUE(a.remove(2, 20));
    b.add(1, 10);
    EXPECT_TRUE(a == b);
    EXPECT_TRUE(b == a);
    b.add(1, 11);
    EXPECT_FALSE(a == b);
    Summary c;
    c.add(3, 10);
    Summary d;
    d.add(1, 10);
    EXPECT_FALSE(c == d);
}

TEST(Summary, SerializeRoundTrip) {
    Summary s;
    s.add(7, ts(2024, 1, 31, 10, 30));
    s.add(7, ts(1999, 12, 31, 12));     // negative timestamp
    s.add(7, ts(1999, 12, 31, 12));     // equal timestamps
    s.add(-3, -1);                      // negative rule id
    s.add(-3, -1000000000000LL);
    s.add(0, 0);
    s.add(INT64_MAX, kTimestampMax);
    s.add(INT64_MIN, kTimestampMin);
    s.add(INT64_MIN, kTimestampMax);
    Summary r = roundtrip(s);
    EXPECT_TRUE(r == s);
    EXPECT_EQ(r.occurrence_count(), 9u);
    EXPECT_EQ(r.occurrences(7), (TV{ts(1999, 12, 31, 12), ts(1999, 12, 31, 12), ts(2024, 1, 31, 10, 30)}));
    EXPECT_EQ(r.occurrences(-3), (TV{-1000000000000LL, -1}));
    EXPECT_EQ(r.occurrences(0), (TV{0}));
    EXPECT_EQ(r.occurrences(INT64_MIN), (TV{kTimestampMin, kTimestampMax}));
    EXPECT_EQ(r.occurrences(INT64_MAX), (TV{kTimestampMax}));
    EXPECT_EQ(r.rule_ids(), (std::vector<std::int64_t>{INT64_MIN, -3, 0, 7, INT64_MAX}));
    // Serialization is canonical: the same multiset gives the same bytes.
    EXPECT_EQ(r.serialize(), s.serialize());
}

TEST(Summary, SerializeKnownBytes) {
    Summary s;
    s.add(1, 5);
    s.add(1, 3);
    // version 1, one rule, id zigzag(1)=2, two times, zigzag(3)=6, delta 2.
    EXPECT_EQ(s.serialize(), std::string("\x01\x01\x02\x02\x06\x02", 6));
    Summary n;
    n.add(-1, -1);
    // id zigzag(-1)=1, one time zigzag(-1)=1.
    EXPECT_EQ(n.serialize(), std::string("\x01\x01\x01\x01\x01", 5));
}

TEST(Summary, EmptyRoundTrips) {
    Summary s;
    const std::string bytes = s.serialize();
    EXPECT_EQ(bytes, std::string("\x01\x00", 2));
    EXPECT_TRUE(from_bytes(bytes).empty());
    // A summary whose occurrences were all removed serializes as empty.
    Summary t;
    t.add(1, 1);
    t.remove(1, 1);
    EXPECT_EQ(t.serialize(), bytes);
    // Zero-length input is an empty summary.
    Summary e = Summary::deserialize(nullptr, 0);
    EXPECT_TRUE(e.empty());
    EXPECT_EQ(e.occurrence_count(), 0u);
}

// The state table pads a stored summary in front with zero bytes (alignment): they are skipped.
TEST(Summary, LeadingZeroPaddingIsSkipped) {
    Summary s;
    s.add(5, ts(2024, 3, 1));
    s.add(9, -12345);
    s.mark_exact_from(ts(2024, 1, 1));
    const std::string bytes = s.serialize();
    for (std::size_t pad = 1; pad <= 15; pad++) {
        const Summary back = from_bytes(std::string(pad, '\0') + bytes);
        EXPECT_EQ(back, s);
        EXPECT_EQ(back.exact_from(), s.exact_from());
        EXPECT_EQ(back.serialize(), bytes);
    }
    EXPECT_TRUE(from_bytes(std::string(7, '\0')).empty());
    // Padding does not make a truncated encoding readable.
    EXPECT_THROW(from_bytes(std::string(3, '\0') + bytes.substr(0, bytes.size() - 1)), UserError);
}

TEST(Summary, TruncatedInputThrows) {
    Summary s;
    s.add(5, ts(2024, 3, 1));
    s.add(5, ts(2024, 3, 2));
    s.add(9, -12345);
    const std::string bytes = s.serialize();
    for (size_t len = 1; len < bytes.size(); len++) expect_corrupt(bytes.substr(0, len));
}

TEST(Summary, WrongVersionThrows) {
    Summary s;
    s.add(1, 1);
    std::string bytes = s.serialize();
    // (A zero byte is padding, not a version: LeadingZeroPaddingIsSkipped.)
    for (unsigned char v : {5, 6, 0x7f, 0xff}) {
        bytes[0] = static_cast<char>(v);
        try {
            from_bytes(bytes);
            ADD_FAILURE() << "version " << int(v) << " accepted";
        } catch (const UserError& e) {
            EXPECT_EQ(e.sqlstate(), sqlstate::kDataCorrupted);
            EXPECT_STREQ(e.what(), "leadscore summary has an unknown format version");
        }
    }
}

TEST(Summary, TrailingBytesThrow) {
    Summary s;
    s.add(1, 1);
    expect_corrupt(s.serialize() + std::string("\x00", 1));
    expect_corrupt(s.serialize() + "x");
    expect_corrupt(std::string("\x01\x00\x00", 3));
}

TEST(Summary, ZeroCountsAndBadStructureThrow) {
    // One rule (id 1) with zero occurrences.
    expect_corrupt(std::string("\x01\x01\x02\x00", 4));
    // Rule count far larger than the input.
    expect_corrupt(std::string("\x01\x7f", 2));
    // Occurrence count larger than the input.
    expect_corrupt(std::string("\x01\x01\x02\x7f\x00", 5));
    // Rule ids not strictly increasing (1 then 1).
    expect_corrupt(std::string("\x01\x02\x02\x01\x00\x02\x01\x00", 8));
    // Rule ids decreasing (2 then 1).
    expect_corrupt(std::string("\x01\x02\x04\x01\x00\x02\x01\x00", 8));
    // Delta that overflows past INT64_MAX: first time zigzag(1)=2, then delta 2^64-1.
    expect_corrupt(std::string("\x01\x01\x02\x02\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 15));
    // A varint that never ends.
    expect_corrupt(std::string("\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12));
    // The valid counterpart of the first case decodes.
    Summary ok = from_bytes(std::string("\x01\x01\x02\x01\x00", 5));
    EXPECT_EQ(ok.occurrences(1), (TV{0}));
}

TEST(Summary, MarkedFormatRoundTripsAndRejectsDamage) {
    Summary s;
    s.add(4, 100);
    s.add(4, 300);
    s.mark_exact_from(-77);
    const std::string bytes = s.serialize();
    EXPECT_EQ(bytes[0], '\x02');
    Summary back = from_bytes(bytes);
    EXPECT_TRUE(back == s);
    EXPECT_EQ(back.exact_from(), -77);
    // Truncated anywhere: corrupted, never a shorter summary.
    for (std::size_t n = 1; n < bytes.size(); n++) expect_corrupt(bytes.substr(0, n));
    // The mark cannot claim "no mark" in the marked format.
    std::string none = "\x02";
    none += std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);  // zigzag(INT64_MIN)
    none += std::string("\x00", 1);
    expect_corrupt(none);
    // Cleared: no mark, the first format again.
    s.clear();
    EXPECT_EQ(s.exact_from(), kTimestampMin);
    EXPECT_EQ(s.serialize()[0], '\x01');
}
