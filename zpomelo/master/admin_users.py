"""Who may talk to the master: config/adminUser.json users, their passwords and levels.

One check for both doors (the command line's admin verbs and the web console). Passwords are
compared in constant time; a password may be stored hashed (``pbkdf2_sha256$<iterations>$<salt>
$<hash>``, made by ``python -m zpomelo.master.admin_users``) so the file does not hold it in
clear. PBKDF2 runs in gevent's thread pool (hashlib releases the GIL), so a login does not stall
the master's heartbeats. Levels: 0 may only watch; 1 and above (Pomelo's default 1) may act.

    python -m zpomelo.master.admin_users        # asks for a password, prints its hashed form
"""
import base64
import getpass
import hashlib
import hmac
import os
import sys

import gevent

HASH_PREFIX = "pbkdf2_sha256$"
DEFAULT_ITERATIONS = 200_000
WATCH_LEVEL = 0         # may see everything, change nothing
OPERATOR_LEVEL = 1      # may also stop, kill, restart and add servers
# what a missing user is checked against, so an unknown name costs the time of a known one
_DUMMY = "pbkdf2_sha256$%d$AAAAAAAAAAAAAAAAAAAAAA$%s" % (DEFAULT_ITERATIONS, "A" * 43)


def hash_password(password, iterations=DEFAULT_ITERATIONS, salt=None):
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return "%s%d$%s$%s" % (HASH_PREFIX, iterations, _b64(salt), _b64(digest))


def _b64(data):
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_hashed(stored):
    return isinstance(stored, str) and stored.startswith(HASH_PREFIX)


def check_hash_format(stored):
    """None when a hashed password is well formed, else what is wrong (for config errors)."""
    try:
        _, iterations, salt, digest = stored.split("$")
        if int(iterations) < 1 or not _unb64(salt) or len(_unb64(digest)) != 32:
            raise ValueError
    except ValueError:
        return ("a hashed password must read pbkdf2_sha256$<iterations>$<salt>$<hash> (make "
                "one with: python -m zpomelo.master.admin_users)")
    return None


def password_matches(stored, given):
    """Constant-time comparison of a stored (plain or hashed) password with the given one."""
    if not isinstance(given, str):
        return False
    if not is_hashed(stored):
        return hmac.compare_digest(stored.encode("utf-8"), given.encode("utf-8"))
    try:
        _, iterations, salt, digest = stored.split("$")
        iterations, salt, digest = int(iterations), _unb64(salt), _unb64(digest)
    except ValueError:
        return False
    computed = gevent.get_hub().threadpool.apply(
        hashlib.pbkdf2_hmac, ("sha256", given.encode("utf-8"), salt, iterations))
    return hmac.compare_digest(computed, digest)


def find_user(users, username, password):
    """The user whose name and password match, or None. A wrong name costs what a wrong
    password costs (the check runs against a stand-in), so names cannot be probed by timing."""
    user = next((u for u in users if u["username"] == username), None)
    if user is None:
        password_matches(_DUMMY if any(is_hashed(u["password"]) for u in users)
                         else "\0" * 16, password if isinstance(password, str) else "")
        return None
    return user if password_matches(user["password"], password) else None


def may_act(user):
    return int(user.get("level", OPERATOR_LEVEL)) >= OPERATOR_LEVEL


def main(argv=None):
    """Print the hashed form of a password typed twice (or read from stdin when piped)."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            sys.stderr.write("the passwords differ\n")
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        sys.stderr.write("an empty password is not allowed\n")
        return 1
    sys.stdout.write(hash_password(password) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
