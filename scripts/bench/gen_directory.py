"""Writes the bench directory for scripts/bench.sh and prints the login of the owner of team 1.

Shape (the same as test/bench/bench_world.cpp): 1,000 teams, 20,000 customers, 25,000 profiles.
Customer i (id 100001 + i) has profile 200001 + i in team i % 1000 + 1; position i // 1000 in that
team makes it the owner (0), an admin (1, 2) or a member; the last two customers are operators.
5,000 non-operator customers get a second profile (300001...) in another team, one in five as
admin. Passwords are "pw-<customer id>", hashed with a cheap scrypt (ln=4, r=8, p=1).

--ln L sets the scrypt cost of every hash (scenario S6 of scripts/bench.sh uses ln=14, the cost of
a real directory). One ln=14 hash takes 50-200 ms, so 20,000 of them would take up to an hour:
--own-passwords N keeps "pw-<id>" for the first N customers only (customers 100001...; the owner
of team 1 is the first) and gives all the others one shared hash of "pw-shared", of the same cost.

usage: gen_directory.py [--ln L] [--own-passwords N] OUT.json
prints: <owner e-mail> <owner password>
"""
import argparse
import base64
import hashlib
import json
import os
import random

TEAMS, CUSTOMERS, SECOND_PROFILES, OPERATORS = 1000, 20000, 5000, 2


def b64(raw):
    return base64.b64encode(raw).decode().rstrip("=")


def scrypt_hash(password, ln):
    salt = os.urandom(16)
    # maxmem: hashlib's default of 32 MiB is too small above ln=14 (128 * r * 2^ln bytes).
    key = hashlib.scrypt(password.encode(), salt=salt, n=2 ** ln, r=8, p=1, dklen=32,
                         maxmem=2 ** 31 - 1)
    return f"$scrypt$ln={ln},r=8,p=1$" + b64(salt) + "$" + b64(key)


def main():
    ap = argparse.ArgumentParser(description="bench directory for scripts/bench.sh")
    ap.add_argument("--ln", type=int, default=4, choices=range(1, 21), metavar="L",
                    help="scrypt cost, N = 2^L (default 4)")
    ap.add_argument("--own-passwords", type=int, default=CUSTOMERS, metavar="N",
                    help="customers with their own pw-<id> (default all)")
    ap.add_argument("out")
    args = ap.parse_args()
    if not 1 <= args.own_passwords <= CUSTOMERS:
        ap.error(f"--own-passwords must be 1-{CUSTOMERS}")
    shared = scrypt_hash("pw-shared", args.ln) if args.own_passwords < CUSTOMERS else None
    rng = random.Random(20240611)
    teams = [{"id": t, "name": f"Bench Team {t}"} for t in range(1, TEAMS + 1)]
    customers, profiles = [], []
    for i in range(CUSTOMERS):
        cid = 100001 + i
        team, position = i % TEAMS + 1, i // TEAMS
        role = "owner" if position == 0 else "admin" if position <= 2 else "member"
        customers.append({"id": cid, "email": f"c{cid}@bench.test",
                          "name": f"Bench Customer {cid}",
                          "passwordHash": scrypt_hash(f"pw-{cid}", args.ln)
                          if i < args.own_passwords else shared,
                          "operator": i >= CUSTOMERS - OPERATORS})
        profiles.append({"id": 200001 + i, "customerId": cid, "teamId": team, "role": role})
    picks = sorted(rng.sample(range(CUSTOMERS - OPERATORS), SECOND_PROFILES))
    for n, i in enumerate(picks):
        home = i % TEAMS + 1
        other = rng.randrange(1, TEAMS)
        if other >= home:
            other += 1
        profiles.append({"id": 300001 + n, "customerId": 100001 + i, "teamId": other,
                         "role": "admin" if rng.random() < 0.2 else "member"})

    assert len(customers) == CUSTOMERS and len(profiles) == CUSTOMERS + SECOND_PROFILES
    assert len({(p["customerId"], p["teamId"]) for p in profiles}) == len(profiles)
    assert sum(p["role"] == "owner" for p in profiles) == TEAMS
    with open(args.out, "w") as f:
        json.dump({"customers": customers, "teams": teams, "profiles": profiles}, f)
    owner = customers[0]
    print(owner["email"], f"pw-{owner['id']}")


if __name__ == "__main__":
    main()
