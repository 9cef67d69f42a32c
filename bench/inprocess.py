"""The hot paths in-process, through the Flask test client (bench/README.md, issue 16).

    python -m bench.inprocess [sqlite|postgres] [N]   # CPU ms per request, best of 3 × N
    python -m bench.inprocess sqlite 1 --calls        # Python calls per request (deterministic)
    python -m bench.inprocess sqlite 1 --sql          # the statements of toggles, a page, an answer
    python -m bench.inprocess sqlite 100 --profile page   # cProfile of healthz|page|api|toggle

Runs on a throw-away copy of the 10,000-contact bench data set.
"""

import cProfile
import pstats
import random
import re
import sys
import time

from bench import generate

kind = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 500
profile = sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else None
base = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres" if kind == "postgres" else None
dataset = generate.ensure_dataset(base, 10_000)
url = generate.scratch_copy(base, dataset, "prof")

from preference_center import create_app, tokens  # noqa: E402
from preference_center.api import keys  # noqa: E402
from preference_center.extensions import db  # noqa: E402
from preference_center.models import Contact  # noqa: E402

settings = generate.app_settings(
    url,
    MAIL_SENDING_RATE_LIMIT="1000000 per hour",
    API_RATE_LIMIT="1000000 per second",
    PUBLIC_BASE_URL="http://localhost",
    MAIL_SERVER="127.0.0.1",
    MAIL_PORT=9,
)
app = create_app(settings)
with app.app_context():
    contacts = db.session.execute(db.select(Contact).where(Contact.id <= 2000)).scalars().all()
    paths = ["/p/" + tokens.sign(tokens.MANAGE, c) for c in contacts]
    ids = [c.id for c in contacts]
    _, key = keys.create("prof", ["consent:read"])
    db.session.commit()
    db.session.remove()

client = app.test_client()
slugs = [s for s, *_ in generate.LISTS]


def healthz():
    r = client.get("/healthz")
    assert r.status_code == 200


def page():
    r = client.get(random.choice(paths))
    assert r.status_code == 200, r.status_code


def api():
    r = client.get(
        f"/api/v1/consent?email=contact{random.choice(ids)}@bench.example&list={random.choice(slugs)}",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 200, r.data


toggle_client = app.test_client()
html = toggle_client.get(paths[0]).get_data(as_text=True)
csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def toggle():
    data = {"csrf_token": csrf}
    if random.random() < 0.5:
        data["subscribed"] = "yes"
    r = toggle_client.post(
        random.choice(paths) + "/lists/" + random.choice(slugs),
        data=data,
        headers={"HX-Request": "true"},
    )
    assert r.status_code in (200, 409), (r.status_code, r.data[:300])


if "--sql" in sys.argv:
    import sqlalchemy as sa

    with app.app_context():
        engine = db.engine
    seen = []
    sa.event.listen(
        engine, "before_cursor_execute", lambda c, cur, st, *a: seen.append(st.split("\n")[0][:110])
    )
    sa.event.listen(engine, "begin", lambda c: seen.append("-- begin"))
    sa.event.listen(engine, "commit", lambda c: seen.append("-- commit"))
    sa.event.listen(engine, "rollback", lambda c: seen.append("-- rollback"))
    for wanted in ("", "yes", "", "yes"):
        seen.clear()
        data = {"csrf_token": csrf, "subscribed": wanted}
        r = toggle_client.post(
            paths[1] + "/lists/market-insights", data=data, headers={"HX-Request": "true"}
        )
        print("toggle", repr(wanted), r.status_code, len(seen))
        print("\n".join("   " + x for x in seen))
    seen.clear()
    page()
    print("page", len(seen))
    print("\n".join("   " + x for x in seen))
    seen.clear()
    api()
    print("api", len(seen))
    print("\n".join("   " + x for x in seen))
names = {"healthz": healthz, "page": page, "api": api, "toggle": toggle}
try:
    if "--sql" in sys.argv:
        pass
    elif "--calls" in sys.argv:
        for name, fn in names.items():
            for _ in range(30):
                fn()
            pr = cProfile.Profile()
            pr.enable()
            for _ in range(100):
                fn()
            pr.disable()
            st = pstats.Stats(pr)
            print(f"{name}: {st.total_calls / 100:,.0f} Python calls/request")
    elif profile:
        fn = names[profile]
        for _ in range(50):
            fn()
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(N):
            fn()
        pr.disable()
        st = pstats.Stats(pr)
        st.sort_stats("cumulative").print_stats(45)
        st.print_callers("_get_current_context|get_locale")
        st.print_stats(
            "url_for|generate_csrf|get_template|_render|history|rows_for|page_context|verify|build_row|mask_email|why|select|list_name|list_text|format_day|describe"
        )
        st.sort_stats("tottime").print_stats(25)
    else:
        for name, fn in names.items():
            for _ in range(50):
                fn()
            best = []
            for _ in range(3):
                t = time.process_time()
                for _ in range(N):
                    fn()
                best.append((time.process_time() - t) / N * 1000)
            print(f"{name}: {min(best):.3f} ms (runs {', '.join(f'{b:.3f}' for b in best)})")
finally:
    with app.app_context():
        db.engine.dispose()
    generate.drop_scratch(base, url)
