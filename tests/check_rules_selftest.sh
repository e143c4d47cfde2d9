#!/bin/sh
# check_rules_selftest.sh - the rule checker must catch what it claims to
# catch.  Builds a small tree in a scratch directory (two headers with rule
# lists, a source beside one of them, a design page, a chapter), checks
# that it passes and that each reference went to the rule it names, then
# breaks it one way at a time and checks that each breakage fails with a
# message naming the file and the line.  A checker that always passed, or
# that resolved a reference to the wrong list, fails this test.  POSIX sh.
set -u

src=${top_srcdir:-.}
checker=$src/tests/check_rules.sh
work=./check_rules_selftest.$$

trap 'rm -rf "$work"' EXIT INT TERM
rm -rf "$work"
mkdir "$work" "$work/lib" "$work/docs" "$work/tutorial" "$work/tests" \
      "$work/bindings" "$work/bindings/sub" || exit 99
# The checker finds rules.awk next to itself: give it a copy.
cp "$checker" "$src/tests/rules.awk" "$work/tests/" || exit 99

. "$src/tests/selftest.sh"

run() {  # run the checker on the scratch tree; output in $work/out
    (cd "$work" && top_srcdir=. sh tests/check_rules.sh "$@") > "$work/out" 2>&1
}

expect_listed() {  # $1 = a line `check_rules.sh --list` must print
    run --list
    grep -F -x -- "$1" "$work/out" > /dev/null ||
        { fail "not resolved as '$1':"; cat "$work/out" >&2; }
}

# R is "rule" spelt so that this file holds no reference of its own.
R=rule
RC=Rule

write_tree() {
    cat > "$work/lib/a.h" <<X
/*
 * a.h - a module.
 *
 * Lifetimes:
 *   1. The first.
 *   2. The second, whose text runs on to a line indented more:
 *      7. is not an item there.
 *   3. The third.
 *
 * Threads: one.  This list is not a $R list:
 *   1. one
 *   2. two
 */
/** Drop it (see lifetime ${R}s 1 and 3). */
void a_unref(void);
X
    cat > "$work/lib/a.c" <<X
#include "a.h"
/* Bare: a.h's list (${R} 2).  Wrapped across lines: (b.h,
 * $R 2).  Capitalised, after a full stop.  ${RC} 3 holds.  The number
 * on the next line: (b.h, $R
 * 1). */
X
    cat > "$work/lib/b.h" <<X
/*
 * b.h - another.
 *
 * Rules:
 *   1. Only.
 *   2. Two.
 */
X
    cat > "$work/docs/design.md" <<X
# Design

Cite \`${R} 9\` like this: a code span only shows the syntax.  A word
that ends in it is no reference: nobody may over${R} 9 times.

## ${R}s that hold everywhere

1. **One.**
2. **Two**, which a.h $R 1 leans on.
3. **Three.**
4. **Four.**

## Something else

1. Not a $R.
X
    cat > "$work/tutorial/01-x.md" <<X
# A chapter

As design $R 4 says, and \`b.h\`, $R 1 too.
X
    printf '# Python: see a.h, %s 3, and rt.h, lifetime %s 1.\n' "$R" "$R" > "$work/bindings/x.py"
    printf '/* This file was automatically generated; (a.h, %s 99) is not ours. */\n' "$R" > "$work/bindings/gen_wrap.c"
    printf '/*\n * rt.h - found by its name alone.\n *\n * Lifetimes:\n *   1. One.\n */\n' > "$work/bindings/sub/rt.h"
}

# 1. A good tree passes, counts every reference, and resolves each to the
#    list it names.
write_tree
expect_pass "good tree"
grep -F "check_rules: 11 references to 4 rule lists in 7 files all hold" "$work/out" > /dev/null ||
    fail "wrong counts: $(cat "$work/out")"
expect_listed "lib/a.h:14: \"${R}s 1 and 3\" -> lib/a.h $R 1"
expect_listed "lib/a.h:14: \"${R}s 1 and 3\" -> lib/a.h $R 3"
expect_listed "lib/a.c:2: \"${R} 2\" -> lib/a.h $R 2"
expect_listed "lib/a.c:3: \"b.h $R 2\" -> lib/b.h $R 2"
expect_listed "lib/a.c:3: \"${RC} 3\" -> lib/a.h $R 3"
expect_listed "docs/design.md:9: \"a.h $R 1\" -> lib/a.h $R 1"
expect_listed "tutorial/01-x.md:3: \"design $R 4\" -> docs/design.md $R 4"
expect_listed "tutorial/01-x.md:3: \"b.h $R 1\" -> lib/b.h $R 1"
expect_listed "lib/a.c:4: \"b.h $R 1\" -> lib/b.h $R 1"
expect_listed "bindings/x.py:1: \"a.h $R 3\" -> lib/a.h $R 3"
expect_listed "bindings/x.py:1: \"rt.h $R 1\" -> bindings/sub/rt.h $R 1"

# 2. A number past the end of a header's list, qualified or bare.
printf '/* (a.h, %s 4) */\n' "$R" >> "$work/lib/a.c"
expect_fail "past the list" "lib/a.c:6: \"a.h $R 4\": no such $R; the list in lib/a.h (line 4) has ${R}s 1-3"
write_tree
printf '/* %s 4 */\n' "$R" >> "$work/lib/a.c"
expect_fail "bare, past the list" "lib/a.c:6: \"${R} 4\": no such $R"
write_tree

# 3. The design page's rules, and the second of a pair.
printf 'See design %s 5.\n' "$R" >> "$work/tutorial/01-x.md"
expect_fail "design" "tutorial/01-x.md:4: \"design $R 5\": no such $R; the list in docs/design.md (line 6) has ${R}s 1-4"
write_tree
sed "s/${R}s 1 and 3/${R}s 1 and 4/" "$work/lib/a.h" > "$work/tmp" && mv "$work/tmp" "$work/lib/a.h"
expect_fail "second of a pair" "lib/a.h:14: \"${R}s 1 and 4\": no such $R"
write_tree

# 4. Wrapped across comment lines: the number on the next line counts.
sed "s/^ \* $R 2)/ * $R 9)/" "$work/lib/a.c" > "$work/tmp" && mv "$work/tmp" "$work/lib/a.c"
expect_fail "wrapped" "lib/a.c:3: \"b.h $R 9\": no such $R; the list in lib/b.h"
write_tree

# 5. Names that lead nowhere: a missing header, a header with no list, a
#    bare reference where no list is implied, a design page that is gone.
printf '/* nosuch.h, %s 1 */\n' "$R" >> "$work/lib/a.c"
expect_fail "missing header" "lib/a.c:6: \"nosuch.h $R 1\": names nosuch.h, which is not in the tree"
write_tree
printf '/* c.h - no list. */\n' > "$work/lib/c.h"
printf '/* c.h %s 1 */\n' "$R" >> "$work/lib/a.c"
expect_fail "no list" "lib/a.c:6: \"c.h $R 1\": lib/c.h has no numbered $R list"
printf '/* %s 1 */\n' "$R" > "$work/lib/c.c"
expect_fail "own header without a list" "lib/c.c:1: \"${R} 1\": lib/c.h has no numbered $R list"
rm -f "$work/lib/c.h" "$work/lib/c.c"
write_tree
mkdir "$work/bindings/other"
printf '/*\n * Lifetimes:\n *   1. One.\n *   2. Two.\n */\n' > "$work/bindings/other/rt.h"
expect_fail "ambiguous name" "bindings/x.py:1: \"rt.h $R 1\": rt.h is ambiguous: 2 files have that name"
printf 'And bindings/other/rt.h, %s 2.\n' "$R" >> "$work/tutorial/01-x.md"
expect_listed "tutorial/01-x.md:4: \"bindings/other/rt.h $R 2\" -> bindings/other/rt.h $R 2"
rm -rf "$work/bindings/other"
write_tree
printf 'That is the price of %s 1.\n' "$R" >> "$work/tutorial/01-x.md"
expect_fail "bare in a chapter" "tutorial/01-x.md:4: \"${R} 1\": which list?"
write_tree
rm "$work/docs/design.md"
expect_fail "no design page" "tutorial/01-x.md:3: \"design $R 4\": names docs/design.md, which is not in the tree"
write_tree

# 6. Files added later are found and checked: a source split off a module
#    with no header of its own means the one header with a list it
#    includes, and is an error when that is not one.
printf '#include "b.h"\n#include "c.h"\n/* (%s 2) */\n' "$R" > "$work/lib/split.c"
expect_listed "lib/split.c:3: \"${R} 2\" -> lib/b.h $R 2"
printf '#include "b.h"\n/* (%s 3) */\n' "$R" > "$work/lib/split.c"
expect_fail "new file" "lib/split.c:2: \"${R} 3\": no such $R; the list in lib/b.h"
printf '#include "a.h"\n#include "b.h"\n/* (%s 1) */\n' "$R" > "$work/lib/split.c"
expect_fail "two included lists" "lib/split.c:3: \"${R} 1\": which list? lib/split.c has no header lib/split.h of its own, and includes 2 headers with $R lists"
mkdir "$work/examples"
printf '/* loop.h %s 1 */\n' "$R" > "$work/examples/new.c"
expect_fail "new directory" "examples/new.c:1: \"loop.h $R 1\": names loop.h"
rm -rf "$work/lib/split.c" "$work/examples"

# 7. A list numbered wrong, and a file with two lists.
sed 's/^ \*   3\. The third\./ *   4. The third./' "$work/lib/a.h" > "$work/tmp" && mv "$work/tmp" "$work/lib/a.h"
expect_fail "misnumbered" "lib/a.h:8: $R list item numbered 4 where 3 was due"
write_tree
printf '/*\n * Lifetimes:\n *   1. Again.\n */\n' >> "$work/lib/b.h"
expect_fail "two lists" "lib/b.h:9: a second numbered $R list (the first is at line 4)"
write_tree

# 8. Nothing to check at all (top_srcdir wrong).
rm -rf "$work/lib" "$work/docs" "$work/tutorial" "$work/bindings"
expect_fail "no files" "no files found"

selftest_done check_rules_selftest
