# lib.sh - shared by the configuration file tests: the daemon tests'
# helpers (a umpathd in a temporary directory, the umpath tool pointed at
# it, checks that record failures and go on) and a configuration file
# beside it.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.
. "$(dirname "$0")/../daemon/lib.sh"

CONF=$T/umpath.conf

# conf: write the configuration file from stdin.
conf()
{
	cat >"$CONF"
}

# table_of MAP: MAP's table, the words after "START LENGTH multipath".
table_of()
{
	u table "$1" | cut -d' ' -f4-
}

# expect_table MAP TABLE: `umpath table MAP` shows exactly this table.
expect_table()
{
	expect_out "$2" table_of "$1"
}

# map_field MAP KEY: KEY of MAP in `umpath show maps MAP --json`.
map_field()
{
	u show maps "$1" --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["maps"][0][sys.argv[1]])' "$2"
}

# Whether `show maps --json` is there to read policies back with.
have_show_maps()
{
	command -v python3 >/dev/null && u show maps --json >/dev/null 2>&1
}
