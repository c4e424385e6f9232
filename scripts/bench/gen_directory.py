"""Writes the bench directory for scripts/bench.sh and prints the login of the owner of team 1.

Shape (the same as test/bench/bench_world.cpp): 1,000 teams, 20,000 customers, 25,000 profiles.
Customer i (id 100001 + i) has profile 200001 + i in team i % 1000 + 1; position i // 1000 in that
team makes it the owner (0), an admin (1, 2) or a member; the last two customers are operators.
5,000 non-operator customers get a second profile (300001...) in another team, one in five as
admin. Passwords are "pw-<customer id>", hashed with a cheap scrypt (ln=4, r=8, p=1).

usage: gen_directory.py OUT.json      prints: <owner e-mail> <owner password>
"""
import base64
import hashlib
import json
import os
import random
import sys

TEAMS, CUSTOMERS, SECOND_PROFILES, OPERATORS = 1000, 20000, 5000, 2


def b64(raw):
    return base64.b64encode(raw).decode().rstrip("=")


def scrypt_hash(password):
    salt = os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 4, r=8, p=1, dklen=32)
    return "$scrypt$ln=4,r=8,p=1$" + b64(salt) + "$" + b64(key)


def main():
    rng = random.Random(20240611)
    teams = [{"id": t, "name": f"Bench Team {t}"} for t in range(1, TEAMS + 1)]
    customers, profiles = [], []
    for i in range(CUSTOMERS):
        cid = 100001 + i
        team, position = i % TEAMS + 1, i // TEAMS
        role = "owner" if position == 0 else "admin" if position <= 2 else "member"
        customers.append({"id": cid, "email": f"c{cid}@bench.test",
                          "name": f"Bench Customer {cid}",
                          "passwordHash": scrypt_hash(f"pw-{cid}"),
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
    with open(sys.argv[1], "w") as f:
        json.dump({"customers": customers, "teams": teams, "profiles": profiles}, f)
    owner = customers[0]
    print(owner["email"], f"pw-{owner['id']}")


if __name__ == "__main__":
    main()
