# listings.awk - check or rewrite the code listings of one tutorial chapter.
#
# A chapter includes code from a file by marker, never by hand:
#
#   <!-- listing: examples/FILE.c NAME -->
#   ```c
#   ...the lines of region NAME of examples/FILE.c...
#   ```
#   <!-- end listing -->
#
# Without NAME the whole file is included.  In the file a region is
#
#   /* listing: NAME */        (or "// listing: NAME", "# listing: NAME",
#                               "-- listing: NAME")
#   ...lines...
#   /* end listing */          (or "// end listing", "# end listing",
#                               "-- end listing")
#
# Region markers may be indented and may nest; marker lines themselves never
# appear in a listing.  Chapter markers count only at the start of a line, so
# a chapter can show the syntax in an indented code block without it being
# taken as a real listing.
#
# Usage (tests/check_listings.sh does this for every chapter):
#   awk -v mode=check  -v chapter=tutorial/NN.md -v srcdir=TOP -f listings.awk CHAPTER
#       prints "listings N" on stdout; each problem goes to stderr; exit 1 if any.
#   awk -v mode=update -v chapter=... -v srcdir=TOP -f listings.awk CHAPTER > NEW
#       prints the chapter with every listing refreshed from its file; exit 1
#       (and the caller keeps the old chapter) if any listing cannot be made.
#
# Plain POSIX awk: no gawk extensions, so it runs under mawk and busybox too.
# Cost: each listing reads its file once, O(file size); chapters are small.

function problem(line, msg) {
    printf "%s:%d: %s\n", chapter, line, msg | "cat 1>&2"
    nproblems++
}

function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}

# If s (trimmed) opens a region, return its name; else "".
function region_start(s,    t) {
    t = trim(s)
    if (t ~ /^\/\* listing: [^ \t]+ \*\/$/) {
        t = substr(t, 13)
        return substr(t, 1, length(t) - 3)
    }
    if (t ~ /^(\/\/|#|--) listing: [^ \t]+$/) {
        sub(/^(\/\/|#|--) listing: /, "", t)
        return t
    }
    return ""
}

function region_end(s,    t) {
    t = trim(s)
    return t == "/* end listing */" || t == "// end listing" || t == "# end listing" || \
           t == "-- end listing"
}

function fence_language(path) {
    if (path ~ /\.[ch]$/ || path ~ /\.i$/) return "c"
    if (path ~ /\.sh$/) return "sh"
    if (path ~ /\.py$/) return "python"
    if (path ~ /\.lua$/) return "lua"
    if (path ~ /\.awk$/) return "awk"
    if (path ~ /\.dot$/) return "dot"
    return ""
}

# Fill want[1..nwant] with the listing the chapter should show for region
# `name` of `path` (the whole file when name is ""), fences included.
# Returns "" on success or a message saying what is wrong.
function load(path, name,    nm, full, line, r, depth, lineno, inside, tdepth, found, startline, msg) {
    nwant = 0
    if (path == "" || path ~ /^\// || path ~ /(^|\/)\.\.(\/|$)/)
        return "listing path must be relative to the source tree: " path
    full = srcdir "/" path
    want[++nwant] = "```" fence_language(path)
    depth = 0; lineno = 0; inside = 0; tdepth = 0; found = 0; msg = ""
    while ((r = (getline line < full)) > 0) {
        lineno++
        if ((nm = region_start(line)) != "") {
            depth++
            opened[depth] = lineno
            if (nm == name) {
                found++
                if (found == 1) { inside = 1; tdepth = depth; startline = lineno }
                else if (msg == "")
                    msg = sprintf("region '%s' is marked more than once in %s (lines %d and %d)", name, path, startline, lineno)
            }
            continue
        }
        if (region_end(line)) {
            if (depth == 0) {
                if (msg == "") msg = sprintf("%s:%d: 'end listing' with no region open", path, lineno)
                continue
            }
            if (inside && depth == tdepth) inside = 0
            depth--
            continue
        }
        if (inside || name == "")
            want[++nwant] = line
    }
    if (r < 0) {
        nwant = 0
        return "cannot read " path " (looked for " full ")"
    }
    close(full)
    if (depth > 0 && msg == "")
        msg = sprintf("%s:%d: region opened here has no 'end listing'", path, opened[depth])
    if (name != "" && found == 0 && msg == "")
        msg = sprintf("no region '%s' in %s", name, path)
    want[++nwant] = "```"
    return msg
}

# Compare the collected block have[1..nhave] with want[1..nwant].
function compare(    i, n) {
    n = nhave > nwant ? nhave : nwant
    for (i = 1; i <= n; i++) {
        if (i > nhave || i > nwant || have[i] != want[i]) {
            problem(mline + i, sprintf("listing %s differs from the file (the listing starts at line %d)\n" \
                "    chapter: %s\n    file:    %s\n    (run `make listings` to refresh the chapter from the file)",
                label, mline,
                i > nhave ? "(block ends)" : have[i],
                i > nwant ? "(listing ends)" : want[i]))
            return
        }
    }
}

BEGIN {
    if (mode != "check" && mode != "update") {
        print "listings.awk: mode must be check or update" | "cat 1>&2"
        usage_error = 1
        exit 2
    }
    inblock = 0; nlistings = 0; nproblems = 0
}

{
    line = $0
    if (substr(line, 1, 13) == "<!-- listing:") {
        if (inblock)
            problem(mline, "listing " label " has no <!-- end listing --> before the next listing")
        inblock = 1; mline = NR; nhave = 0; nlistings++; bad = 0
        spec = line
        if (spec !~ /^<!-- listing: [^ \t]+( [^ \t]+)? -->$/) {
            problem(NR, "malformed listing marker (want <!-- listing: examples/FILE [NAME] -->): " line)
            bad = 1; label = "(malformed)"
        } else {
            spec = substr(spec, 15, length(spec) - 18)
            nf = split(spec, part, " ")
            lpath = part[1]; lname = nf > 1 ? part[2] : ""
            label = lname == "" ? lpath : lpath " " lname
            msg = load(lpath, lname)
            if (msg != "") { problem(NR, "listing " label ": " msg); bad = 1 }
        }
        if (mode == "update") print line
        next
    }
    if (line == "<!-- end listing -->") {
        if (!inblock) {
            problem(NR, "<!-- end listing --> with no listing open")
        } else {
            if (mode == "update") {
                if (bad) for (i = 1; i <= nhave; i++) print have[i]
                else for (i = 1; i <= nwant; i++) print want[i]
            } else if (!bad) {
                compare()
            }
            inblock = 0
        }
        if (mode == "update") print line
        next
    }
    if (inblock) { have[++nhave] = line; next }
    if (mode == "update") print line
}

END {
    if (usage_error) exit 2
    if (inblock) {
        problem(mline, "listing " label " has no <!-- end listing -->")
        if (mode == "update") for (i = 1; i <= nhave; i++) print have[i]
    }
    if (mode == "check") print "listings " nlistings
    close("cat 1>&2")
    exit nproblems > 0 ? 1 : 0
}
