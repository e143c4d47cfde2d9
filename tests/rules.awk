# rules.awk - every "rule N" cross-reference must name a rule that exists.
#
# A rule list is a numbered list that a line introduces:
#
#   in a comment:   Lifetimes:          (or "Rules:", or "Lifetimes (...):")
#                     1. ...
#                     2. ...            continuation lines are indented more
#                                       the list ends at a blank comment line
#                                       or at the end of the comment
#   in markdown:    ## Rules that hold everywhere     (a heading that says
#                   1. ...                             "rules"; the list
#                   2. ...                             ends at the next heading)
#
# Its items must be numbered 1, 2, 3... in order, and a file may have only
# one (a reference could not say which).  A reference is "rule N" or
# "rules N and M" (any case, possibly wrapped across comment lines), and
# names its list by what comes just before it:
#
#   loop.h rule 3, (loop.h, rule 3), server.h, lifetime rule 7
#                       the list in that file: the same directory, then
#                       lib/, then the one file of that name in the tree
#   design rule 4       docs/design.md
#   rule 2, lifetime rule 2
#                       the file's own list: a header's own, or for X.c the
#                       list in X.h beside it (a .c file with no header of
#                       its own, split off a module, means the one header
#                       with a rule list that it #includes); anywhere else
#                       this is an error, since a reader could not tell
#                       which list
#
# In markdown, a code span holding a whole reference (`rule 2`) shows the
# syntax and is not checked.
#
# Usage (tests/check_rules.sh does this):
#   awk -v top=TOP [-v listrefs=1] -f rules.awk FILE...
#       prints "rules R lists L files F" on stdout (after, with listrefs,
#       one line per reference: FILE:LINE: "text" -> TARGET rule N); each
#       problem goes to stderr as FILE:LINE: message; exit 1 if any.
#
# Plain POSIX awk (runs under mawk and busybox).  Cost: every file is held
# in memory once and scanned twice, O(total size); the tree is small.

function problem(f, line, msg) {
    printf "%s:%d: %s\n", f, line, msg | "cat 1>&2"
    nproblems++
}

# A line without its comment leader and surrounding blanks.
function strip(s) {
    sub(/^[ \t]+/, "", s)
    if (!sub(/^\/\*+/, "", s))
        if (!sub(/^\*+\//, "", s))
            if (!sub(/^\*+/, "", s))
                if (!sub(/^\/\/+/, "", s))
                    sub(/^#+/, "", s)
    sub(/\*\/[ \t]*$/, "", s)
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}

# In markdown, a code span that holds a whole "rule N" shows the syntax
# (`rule 2`) rather than making a reference: blank it out.
function mask_code(s,    out, span) {
    out = ""
    while (match(s, /`[^`]*`/)) {
        span = substr(s, RSTART, RLENGTH)
        if (tolower(span) ~ /rules? +[0-9]/) span = "`...`"
        out = out substr(s, 1, RSTART - 1) span
        s = substr(s, RSTART + RLENGTH)
    }
    return out s
}

function dirname(p) {
    if (p !~ /\//) return "."
    sub(/\/[^\/]*$/, "", p)
    return p
}

function basename(p) {
    sub(/^.*\//, "", p)
    return p
}

# Join dir and a relative path, folding "." and ".." segments.
function joinpath(dir, rel,    n, seg, i, out, k, stack) {
    n = split((dir == "." ? "" : dir "/") rel, seg, "/")
    k = 0
    for (i = 1; i <= n; i++) {
        if (seg[i] == "" || seg[i] == ".") continue
        if (seg[i] == "..") { if (k > 0) k--; continue }
        stack[++k] = seg[i]
    }
    out = ""
    for (i = 1; i <= k; i++) out = out (i > 1 ? "/" : "") stack[i]
    return out
}

# The file a reference from f names as `name`, or "" (why is in resolve_err).
function resolve(name, f,    p, b, d) {
    resolve_err = ""
    if (name ~ /\//) {
        p = joinpath(dirname(f), name)
        if (p in nlines) return p
        p = joinpath(".", name)
        if (p in nlines) return p
    }
    b = basename(name)
    d = dirname(f)
    p = joinpath(d, b)
    if (p in nlines) return p
    p = "lib/" b
    if (p in nlines) return p
    if (nbase[b] == 1) return onlybase[b]
    if (nbase[b] > 1) {
        resolve_err = sprintf("%s is ambiguous: %d files have that name; give its directory", name, nbase[b])
        return ""
    }
    resolve_err = sprintf("names %s, which is not in the tree", name)
    return ""
}

# The list an unqualified reference in f means.
function own(f,    h, i, inc, t, n, found) {
    resolve_err = ""
    if (f ~ /\.h$/) return f
    if (f ~ /\.c$/) {
        h = f
        sub(/\.c$/, ".h", h)
        if (h in nlines) return h
        # No header of its own (a file split off a module): the one header
        # it includes that has a rule list.
        n = 0
        for (i = 1; i <= nlines[f]; i++) {
            if (L[f, i] !~ /^[ \t]*#[ \t]*include[ \t]*"[^"]+\.h"/) continue
            inc = L[f, i]
            sub(/^[^"]*"/, "", inc); sub(/".*$/, "", inc)
            t = resolve(inc, f)
            if (t != "" && nlists[t] > 0 && !(t in seen_inc)) { seen_inc[t] = 1; found = t; n++ }
        }
        for (t in seen_inc) delete seen_inc[t]
        resolve_err = ""
        if (n == 1) return found
        resolve_err = sprintf("which list? %s has no header %s of its own, and includes %s: say whose rule (\"loop.h rule 1\", \"design rule 1\")", f, h, n == 0 ? "no header with a rule list" : n " headers with rule lists")
        return ""
    }
    resolve_err = sprintf("which list? only a header, or a .c file beside its header, may say just \"rule N\": say whose rule (\"loop.h rule 1\", \"design rule 1\")")
    return ""
}

# Record the rule lists of file f: nlists[f], and for the first one its
# item count items[f] and the line that introduces it, at[f].
function end_list() {
    if (!inlist) return
    inlist = 0
    if (count == 0) return
    nlists[lf]++
    if (nlists[lf] == 1) { items[lf] = count; at[lf] = lstart }
    else problem(lf, lstart, sprintf("a second numbered rule list (the first is at line %d): a reference could not say which it means", at[lf]))
}

function item(f, i, num, col) {
    if (indent < 0) indent = col
    if (col != indent) return
    count++
    if (num + 0 != count)
        problem(f, i, sprintf("rule list item numbered %s where %d was due (the list starts at line %d)", num, count, lstart))
}

function parse_lists(f,    i, line, s, md, col, num) {
    md = f ~ /\.md$/
    inlist = 0; lf = f
    for (i = 1; i <= nlines[f]; i++) {
        line = L[f, i]
        if (md) {
            if (line ~ /^#+[ \t]/) {
                end_list()
                if (tolower(line) ~ /rules/) { inlist = 1; indent = -1; count = 0; lstart = i }
                continue
            }
            if (inlist && match(line, /^ ? ? ?[0-9]+\. /)) {
                num = line; sub(/^ */, "", num); sub(/\..*$/, "", num)
                col = index(line, num)
                item(f, i, num, col)
            }
            continue
        }
        s = strip(line)
        if (!inlist) {
            if (tolower(s) ~ /^(lifetimes|rules)( \([^)]*\))?:$/) {
                inlist = 1; indent = -1; count = 0; lstart = i
                if (line ~ /\*\//) end_list()
            }
            continue
        }
        if (s == "") { end_list(); continue }
        if (match(line, /^[ \t]*(\*|#+|\/\/)?[ \t]*[0-9]+\. /)) {
            num = substr(line, 1, RLENGTH)
            sub(/\. $/, "", num); sub(/^.*[^0-9]/, "", num)
            col = RLENGTH - length(num) - 1
            item(f, i, num, col)
        }
        if (line ~ /\*\//) end_list()
    }
    end_list()
}

# Check every reference to a target's rule number n.
function check_ref(f, i, target, n, shown) {
    nrefs++
    if (nlists[target] == 0) {
        problem(f, i, sprintf("%s: %s has no numbered rule list (\"Lifetimes:\" or \"Rules:\", or a markdown heading that says \"rules\", then 1., 2., ...)", shown, target))
        return
    }
    if (n < 1 || n > items[target])
        problem(f, i, sprintf("%s: no such rule; the list in %s (line %d) has rules 1-%d", shown, target, at[target], items[target]))
    else
        used[target] = 1
}

function scan_refs(f,    i, prev, cur, n1, n2, w, lo, segstart, segend, pos, rest, atp, c, word, nums, nn, k, prefix, lprefix, t, name, target, shown, qual, q0) {
    for (i = 1; i <= nlines[f]; i++) {
        cur = S[f, i]
        if (cur !~ /[Rr][Uu][Ll][Ee][Ss]? *[0-9]/ && !(i < nlines[f] && tolower(cur) ~ /rules?$/))
            continue
        prev = i > 1 ? S[f, i - 1] : ""
        n1 = i < nlines[f] ? S[f, i + 1] : ""
        n2 = i + 1 < nlines[f] ? S[f, i + 2] : ""
        w = prev " " cur " " n1 " " n2
        lo = tolower(w)
        segstart = length(prev) + 2
        segend = segstart + length(cur) - 1
        pos = segstart
        while (pos <= segend) {
            rest = substr(lo, pos)
            if (!match(rest, /rules? +[0-9]+/)) break
            atp = pos + RSTART - 1
            if (atp > segend) break
            pos = atp + RLENGTH
            c = atp > 1 ? substr(lo, atp - 1, 1) : " "
            if (c ~ /[a-z0-9_]/) continue
            word = substr(lo, atp, RLENGTH)
            nn = 0
            t = word; sub(/^rules? +/, "", t); nums[++nn] = t + 0
            if (word ~ /^rules/)
                while (match(substr(lo, pos), /^(,| and| or|, and) +[0-9]+/)) {
                    t = substr(lo, pos, RLENGTH); sub(/^[^0-9]*/, "", t)
                    nums[++nn] = t + 0
                    pos += RLENGTH
                }
            prefix = substr(w, 1, atp - 1)
            lprefix = tolower(prefix)
            target = ""; qual = ""
            if (match(lprefix, /[a-z0-9_.\/+-]+\.(h|md)[`)]*('s)?[,:]? +(lifetime +)?$/)) {
                q0 = RSTART
                t = substr(lprefix, q0)
                match(t, /^[a-z0-9_.\/+-]+\.(h|md)/)
                name = substr(prefix, q0, RLENGTH)
                qual = name " "
                target = resolve(name, f)
            } else if (lprefix ~ /(^|[^a-z0-9_])design +(lifetime +)?$/) {
                qual = "design "
                target = resolve("docs/design.md", f)
                if (target == "") resolve_err = "names docs/design.md, which is not in the tree"
            } else {
                target = own(f)
            }
            shown = "\"" qual substr(w, atp, pos - atp) "\""
            if (target == "") {
                nrefs++
                problem(f, i, shown ": " resolve_err)
                continue
            }
            for (k = 1; k <= nn; k++) {
                if (listrefs)
                    listed[++nlisted] = sprintf("%s:%d: %s -> %s rule %d", f, i, shown, target, nums[k])
                check_ref(f, i, target, nums[k], shown)
            }
        }
    }
}

FNR == 1 {
    cf = FILENAME
    if (top != "" && substr(cf, 1, length(top) + 1) == top "/")
        cf = substr(cf, length(top) + 2)
    sub(/^\.\//, "", cf)
    skip = 0
    order[++nfiles] = cf
}
# Generated files (SWIG's wrappers) are not ours to check.
FNR <= 5 && /automatically generated/ { skip = 1 }
{
    L[cf, FNR] = $0
    nlines[cf] = FNR
    if (skip) skipped[cf] = 1
}

END {
    for (k = 1; k <= nfiles; k++) {
        f = order[k]
        b = basename(f)
        nbase[b]++
        onlybase[b] = f
    }
    for (k = 1; k <= nfiles; k++) {
        f = order[k]
        if (f in skipped) continue
        for (i = 1; i <= nlines[f]; i++)
            S[f, i] = f ~ /\.md$/ ? mask_code(strip(L[f, i])) : strip(L[f, i])
        parse_lists(f)
    }
    for (k = 1; k <= nfiles; k++) {
        f = order[k]
        if (f in skipped) continue
        scan_refs(f)
        nchecked++
        if (nlists[f] > 0) nl++
    }
    print "rules " nrefs + 0 " lists " nl + 0 " files " nchecked + 0
    for (k = 1; k <= nlisted; k++) print listed[k]
    close("cat 1>&2")
    exit nproblems > 0 ? 1 : 0
}
