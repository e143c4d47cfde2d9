#!/bin/sh
# check_listings_selftest.sh - the listings checker must catch what it claims
# to catch.  Builds a tiny tree (one chapter, two example files) in a scratch
# directory, then checks that:
#   - `--update` fills the listings with exactly the region text (markers
#     stripped, nesting and indentation kept, whole-file listings work);
#   - a check then passes, and each kind of breakage makes it fail with a
#     message naming the chapter, the listing and the file.
# A checker that always passed, or an update that wrote the wrong text,
# fails this test.  POSIX sh only.
set -u

src=${top_srcdir:-.}
checker=$src/tests/check_listings.sh
work=./check_listings_selftest.$$

trap 'rm -rf "$work"' EXIT INT TERM
rm -rf "$work"
mkdir "$work" "$work/tutorial" "$work/examples" "$work/tests" || exit 99
# The checker finds listings.awk next to itself: give it a copy.
cp "$checker" "$src/tests/listings.awk" "$work/tests/" || exit 99

. "$src/tests/selftest.sh"

run() {  # run the checker on the scratch tree; output in $work/out
    top_srcdir=$work sh "$work/tests/check_listings.sh" "$@" > "$work/out" 2>&1
}

write_example() {
    cat > "$work/examples/a.c" <<'X'
#include <stdio.h>
/* listing: outer */
int main(void)
{
    /* listing: inner */
    puts("hi");
    /* end listing */
    return 0;
}
/* end listing */
X
    printf 'whole\n# listing: x\nfile\n# end listing\n' > "$work/examples/b.sh"
}

write_chapter() {
    cat > "$work/tutorial/01-x.md" <<'X'
# A chapter

Shown as syntax, not a listing (indented, so ignored):

    <!-- listing: examples/none.c nothing -->

<!-- listing: examples/a.c outer -->
<!-- end listing -->

Text between.

<!-- listing: examples/a.c inner -->
```c
stale
```
<!-- end listing -->

<!-- listing: examples/b.sh -->
<!-- end listing -->
X
}

expected_chapter() {
    cat <<'X'
# A chapter

Shown as syntax, not a listing (indented, so ignored):

    <!-- listing: examples/none.c nothing -->

<!-- listing: examples/a.c outer -->
```c
int main(void)
{
    puts("hi");
    return 0;
}
```
<!-- end listing -->

Text between.

<!-- listing: examples/a.c inner -->
```c
    puts("hi");
```
<!-- end listing -->

<!-- listing: examples/b.sh -->
```sh
whole
file
```
<!-- end listing -->
X
}

# 1. Stale listings fail; --update writes exactly the expected text; then pass.
write_example
write_chapter
expect_fail "stale chapter" "tutorial/01-x.md:8: listing examples/a.c outer differs"
if run --update; then :; else fail "--update failed:"; cat "$work/out" >&2; fi
expected_chapter > "$work/expected"
if cmp -s "$work/expected" "$work/tutorial/01-x.md"; then :; else
    fail "--update wrote the wrong chapter:"
    diff "$work/expected" "$work/tutorial/01-x.md" >&2
fi
expect_pass "updated chapter"
grep -F "3 listings in 1 chapters" "$work/out" > /dev/null ||
    fail "the checker did not count 3 listings: $(cat "$work/out")"
good=$work/good.md
cp "$work/tutorial/01-x.md" "$good"

# 2. The file changed under the chapter: one changed character is enough.
sed 's/"hi"/"ho"/' "$work/examples/a.c" > "$work/tmp" && mv "$work/tmp" "$work/examples/a.c"
expect_fail "file edited" "listing examples/a.c inner differs"
write_example

# 3. The chapter's copy was edited by hand.
sed 's/^file$/fiel/' "$good" > "$work/tutorial/01-x.md"
expect_fail "chapter edited" "tutorial/01-x.md:28: listing examples/b.sh differs"

# 4. A missing file, a missing region, a duplicated region.
sed 's|examples/b.sh|examples/gone.sh|' "$good" > "$work/tutorial/01-x.md"
expect_fail "missing file" "listing examples/gone.sh: cannot read examples/gone.sh"
sed 's|examples/a.c inner|examples/a.c nosuch|' "$good" > "$work/tutorial/01-x.md"
expect_fail "missing region" "listing examples/a.c nosuch: no region 'nosuch' in examples/a.c"
cp "$good" "$work/tutorial/01-x.md"
printf '/* listing: inner */\n/* end listing */\n' >> "$work/examples/a.c"
expect_fail "duplicate region" "region 'inner' is marked more than once in examples/a.c"
write_example

# 5. A region with no end in the file; a block with no end in the chapter.
printf '/* listing: open */\nint x;\n' >> "$work/examples/a.c"
expect_fail "unterminated region" "examples/a.c:11: region opened here has no 'end listing'"
write_example
sed '$d' "$good" > "$work/tutorial/01-x.md"
expect_fail "unterminated block" "tutorial/01-x.md:25: listing examples/b.sh has no <!-- end listing -->"
# ...and --update must refuse to touch a chapter it cannot fix.
cp "$work/tutorial/01-x.md" "$work/before"
run --update
cmp -s "$work/before" "$work/tutorial/01-x.md" || fail "--update rewrote a broken chapter"

# 6. A malformed marker, and no chapters at all.
cp "$good" "$work/tutorial/01-x.md"
printf '<!-- listing: a b c -->\n<!-- end listing -->\n' >> "$work/tutorial/01-x.md"
expect_fail "malformed marker" "malformed listing marker"
rm "$work/tutorial/01-x.md"
expect_fail "no chapters" "no chapters found"

selftest_done check_listings_selftest
