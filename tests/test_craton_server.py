"""The Craton look-alike enforces the API facts, so the plugin tests against it mean something."""

from __future__ import annotations

import time

import pytest
import requests

from craton_server import UNAUTHENTICATED, CratonServer, craton_server, make_tls_files, tls_context  # noqa: F401


class Api:
    """Plain requests against the look-alike, with its user's headers."""

    def __init__(self, server: CratonServer, admin: bool = False):
        self.server = server
        self.session = requests.Session()
        self.session.headers.update(server.headers(admin))

    def call(self, method: str, path: str, body=None, headers=None, **params) -> requests.Response:
        kwargs = {"params": params or None, "timeout": 5}
        if body is not None:
            kwargs["json"] = body
        if headers is not None:
            kwargs["headers"] = headers
        return self.session.request(method, f"{self.server.url}/v1{path}", **kwargs)

    def ok(self, method: str, path: str, body=None, status: int = 200, **params):
        response = self.call(method, path, body, **params)
        assert response.status_code == status, (response.status_code, response.text)
        return response.json() if response.content else None

    def region(self, name: str = "r1") -> tuple[int, int]:
        cloud = self.ok("POST", "/clouds", {"name": f"c-{name}"}, 201)["id"]
        region = self.ok("POST", "/regions", {"name": name, "cloud_id": cloud}, 201)["id"]
        return cloud, region

    def host(self, cloud: int, region: int, name: str, **extra) -> dict:
        body = {"name": name, "cloud_id": cloud, "region_id": region, "ip_address": "10.0.0.1",
                "device_type": "server", **extra}
        return self.ok("POST", "/hosts", body, 201)


@pytest.fixture
def api(craton_server):
    return Api(craton_server)


def error_of(response: requests.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"message", "status"} and body["status"] == status
    return body["message"]


# -- authentication ------------------------------------------------------------

def test_local_auth_needs_all_three_headers_and_answers_the_exact_401(craton_server, api):
    good = craton_server.headers()
    assert api.call("GET", "/clouds").status_code == 200
    cases = [
        {},
        {**good, "X-Auth-Token": "wrong"},
        {**good, "X-Auth-User": "nobody"},
        {**good, "X-Auth-Project": "not-a-uuid"},
        {**good, "X-Auth-Project": "0" * 32},  # a well-formed but unknown project
        {k: v for k, v in good.items() if k != "X-Auth-Token"},
    ]
    for headers in cases:
        response = requests.get(f"{craton_server.url}/v1/clouds", headers=headers, timeout=5)
        assert response.status_code == 401, headers
        assert response.json() == UNAUTHENTICATED


def test_project_uuid_accepted_with_or_without_dashes(craton_server):
    headers = dict(craton_server.headers(), **{"X-Auth-Project": craton_server.project_id.replace("-", "")})
    assert requests.get(f"{craton_server.url}/v1/clouds", headers=headers, timeout=5).status_code == 200


def test_keystone_mode_takes_only_a_token():
    server = CratonServer(auth="keystone").start()
    try:
        url = f"{server.url}/v1/clouds"
        assert requests.get(url, headers={"X-Auth-Token": server.token}, timeout=5).status_code == 200
        bad = requests.get(url, headers={"X-Auth-Token": "tok-nope"}, timeout=5)
        assert bad.status_code == 401 and bad.json() == UNAUTHENTICATED
    finally:
        server.stop()


def test_admin_lists_answer_401_not_403_to_a_plain_user(craton_server, api):
    assert error_of(api.call("GET", "/projects"), 401) == UNAUTHENTICATED["message"]
    projects = Api(craton_server, admin=True).ok("GET", "/projects")["projects"]
    assert [p["id"] for p in projects] == [craton_server.project_id]


def test_only_an_admin_creates_projects_and_users_and_a_plain_user_manages_the_inventory(craton_server, api):
    """Admin-only: projects, users, project variables (401 to others). Everything an inventory needs is not."""
    admin = Api(craton_server, admin=True)
    for path, body in (("/projects", {"name": "p2"}), ("/users", {"name": "u2"})):
        assert error_of(api.call("POST", path, body), 401) == UNAUTHENTICATED["message"]
    assert craton_server.app.users.keys() == {(craton_server.project_id, n) for n in ("deployer", "admin")}
    created = admin.ok("POST", "/users", {"name": "operator"}, 201)
    assert created["is_admin"] is False and created["project_id"] == craton_server.project_id
    assert error_of(admin.call("POST", "/users", {"name": "operator"}), 409)
    assert error_of(admin.call("POST", "/users", {"name": "x", "project_id": craton_server.project_id}), 400)
    other = admin.ok("POST", "/projects", {"name": "elsewhere"}, 201)["id"]
    assert other in {p["id"] for p in admin.ok("GET", "/projects")["projects"]}
    operator = requests.Session()
    operator.headers.update({"X-Auth-Project": craton_server.project_id, "X-Auth-User": "operator",
                             "X-Auth-Token": created["api_key"]})

    def call(method: str, path: str, body=None) -> requests.Response:
        return operator.request(method, f"{craton_server.url}/v1{path}", json=body, timeout=5)

    cloud = call("POST", "/clouds", {"name": "c-op"}).json()["id"]
    region = call("POST", "/regions", {"name": "r-op", "cloud_id": cloud}).json()["id"]
    host = call("POST", "/hosts", {"name": "h", "cloud_id": cloud, "region_id": region, "ip_address": "10.0.0.1",
                                   "device_type": "server", "labels": ["g"]}).json()["id"]
    for method, path, body in (("PUT", f"/regions/{region}/variables", {"k": 1}),
                               ("DELETE", f"/regions/{region}/variables", ["k"]),
                               ("PUT", f"/hosts/{host}/variables", {"v": 1}),
                               ("PUT", f"/hosts/{host}", {"note": "n"}),
                               ("PUT", f"/hosts/{host}/labels", {"labels": ["g2"]}),
                               ("DELETE", f"/hosts/{host}", None)):
        assert call(method, path, body).status_code in (200, 204), (method, path)
    assert call("GET", f"/projects/{craton_server.project_id}/variables").status_code == 401
    assert call("GET", "/users").status_code == 401


# -- general rules ---------------------------------------------------------------

def test_create_is_201_with_location_and_the_body(api):
    response = api.call("POST", "/clouds", {"name": "c1", "note": "n", "variables": {"a": 1}})
    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"].endswith(f"/v1/clouds/{body['id']}")
    assert body["name"] == "c1" and body["variables"] == {"a": 1} and body["project_id"]


@pytest.mark.parametrize("field", ["id", "created_at", "updated_at", "project_id", "colour"])
def test_unknown_or_server_owned_body_fields_are_400(api, field):
    message = error_of(api.call("POST", "/clouds", {"name": "c1", field: 1}), 400)
    assert message.startswith("The request included the following errors:\n- ") and field in message


def test_missing_required_field_is_400(api):
    cloud = api.ok("POST", "/clouds", {"name": "c"}, 201)["id"]
    assert "region_id" in error_of(api.call("POST", "/hosts", {"name": "h", "cloud_id": cloud,
                                                               "ip_address": "10.0.0.1",
                                                               "device_type": "server"}), 400)


def test_unknown_query_parameter_is_400(api):
    assert "colour" in error_of(api.call("GET", "/hosts", colour="red"), 400)
    cloud, region = api.region()
    host = api.host(cloud, region, "h1")
    error_of(api.call("GET", f"/hosts/{host['id']}/variables", colour="red"), 400)


def test_404_and_405_use_the_error_format(api):
    assert error_of(api.call("GET", "/hosts/999"), 404) == "Not Found"
    assert error_of(api.call("GET", "/nothing-here"), 404) == "Not Found"
    error_of(api.call("PATCH", "/hosts"), 405)


def test_names_are_unique_per_scope(api):
    cloud, region = api.region("r1")
    _, other_region = api.region("r2")
    api.host(cloud, region, "h1")
    message = error_of(api.call("POST", "/hosts", {"name": "h1", "cloud_id": cloud, "region_id": region,
                                                   "ip_address": "10.0.0.2", "device_type": "server"}), 409)
    assert message == "A device with the given name already exists."
    api.host(cloud, other_region, "h1")  # the same name in another region is fine
    assert error_of(api.call("POST", "/regions", {"name": "r1", "cloud_id": cloud}), 409) == \
        "A region with the given name already exists."
    assert error_of(api.call("POST", "/clouds", {"name": "c-r1"}), 409) == \
        "A cloud with the given name already exists."


def test_post_naming_a_missing_cloud_is_a_500(api):
    message = error_of(api.call("POST", "/regions", {"name": "r", "cloud_id": 4242}), 500)
    assert message == "An unknown exception occurred"


def test_deleting_a_host_with_children_is_a_500_until_children_go(api):
    cloud, region = api.region()
    parent = api.host(cloud, region, "p")
    child = api.host(cloud, region, "c", parent_id=parent["id"])
    error_of(api.call("DELETE", f"/hosts/{parent['id']}"), 500)
    response = api.call("DELETE", f"/hosts/{child['id']}")
    assert response.status_code == 204 and response.content == b""
    assert api.call("DELETE", f"/hosts/{parent['id']}").status_code == 204
    assert api.ok("GET", "/hosts", region_id=region)["hosts"] == []


def test_invalid_address_is_accepted_then_poisons_every_read(api):
    cloud, region = api.region()
    api.host(cloud, region, "good")
    bad = api.call("POST", "/hosts", {"name": "bad", "cloud_id": cloud, "region_id": region,
                                      "ip_address": "10.0.0.300", "device_type": "server"})
    assert bad.status_code == 201
    error_of(api.call("GET", f"/hosts/{bad.json()['id']}"), 500)
    error_of(api.call("GET", "/hosts", region_id=region), 500)
    error_of(api.call("GET", f"/hosts/{bad.json()['id']}/variables"), 500)
    assert [h["name"] for h in api.ok("GET", "/hosts", name="good")["hosts"]] == ["good"]


def test_host_put_accepts_only_its_fields_and_refuses_cycles(api):
    cloud, region = api.region()
    a = api.host(cloud, region, "a")
    b = api.host(cloud, region, "b", parent_id=a["id"])
    api.host(cloud, region, "c")
    for field in ("cell_id", "region_id", "labels", "variables", "cloud_id"):
        error_of(api.call("PUT", f"/hosts/{a['id']}", {field: 1}), 400)
    assert "cycle" in error_of(api.call("PUT", f"/hosts/{a['id']}", {"parent_id": b["id"]}), 400)
    error_of(api.call("PUT", f"/hosts/{a['id']}", {"parent_id": a["id"]}), 400)
    error_of(api.call("PUT", f"/hosts/{a['id']}", {"name": "c"}), 409)
    moved = api.ok("PUT", f"/hosts/{b['id']}", {"parent_id": None, "ip_address": "fd00::1",
                                                 "device_type": "container"})
    assert (moved["parent_id"], moved["ip_address"], moved["device_type"]) == (None, "fd00::1", "container")


# -- pagination --------------------------------------------------------------------

def test_limit_outside_10_to_100_is_400_not_clamped(api):
    for bad in (9, 101, 0, "x"):
        error_of(api.call("GET", "/hosts", limit=bad), 400)
    for good in (10, 100):
        assert api.call("GET", "/hosts", limit=good).status_code == 200


def test_pages_by_marker_with_next_on_every_non_empty_page_and_an_empty_end(api):
    cloud, region = api.region()
    made = [api.host(cloud, region, f"h{i:02d}")["id"] for i in range(25)]
    assert len(api.ok("GET", "/hosts")["hosts"]) == 25  # default limit 30
    seen, sizes, marker = [], [], None
    while True:
        params = {"limit": 10, "region_id": region}
        if marker is not None:
            params["marker"] = marker
        page = api.ok("GET", "/hosts", **params)
        rels = {link["rel"]: link["href"] for link in page["links"]}
        sizes.append(len(page["hosts"]))
        if not page["hosts"]:
            assert "next" not in rels
            break
        assert "next" in rels and f"marker={page['hosts'][-1]['id']}" in rels["next"]
        assert "first" in rels and "self" in rels
        seen += [h["id"] for h in page["hosts"]]
        marker = page["hosts"][-1]["id"]
    assert sizes == [10, 10, 5, 0]
    assert seen == made  # created_at,id order by default
    assert "variables" not in api.ok("GET", "/hosts", limit=10)["hosts"][0]


def test_unknown_marker_sort_key_or_direction_is_400(api):
    error_of(api.call("GET", "/hosts", marker=424242), 400)
    error_of(api.call("GET", "/hosts", sort_keys="colour"), 400)
    error_of(api.call("GET", "/hosts", sort_dir="sideways"), 400)


def test_sort_keys_and_direction(api):
    cloud, region = api.region()
    for name in ("b", "c", "a"):
        api.host(cloud, region, name)
    assert [h["name"] for h in api.ok("GET", "/hosts", sort_keys="name")["hosts"]] == ["a", "b", "c"]
    assert [h["name"] for h in api.ok("GET", "/hosts", sort_dir="desc")["hosts"]] == ["a", "c", "b"]
    first = api.ok("GET", "/hosts", sort_keys="name", sort_dir="desc", limit=10)["hosts"]
    after = api.ok("GET", "/hosts", sort_keys="name", sort_dir="desc", limit=10, marker=first[0]["id"])["hosts"]
    assert [h["name"] for h in after] == ["b", "a"]


def test_clouds_and_regions_by_name_are_a_get_by_one(api):
    cloud, region = api.region("r1")
    other_cloud = api.ok("POST", "/clouds", {"name": "other"}, 201)["id"]
    found = api.ok("GET", "/regions", name="r1", cloud_id=other_cloud)  # cloud_id is not looked at
    assert [r["id"] for r in found["regions"]] == [region] and found["links"] == []
    assert error_of(api.call("GET", "/regions", name="nope"), 404) == "Not Found"
    assert error_of(api.call("GET", "/clouds", name="nope"), 404) == "Not Found"
    api.ok("POST", "/regions", {"name": "r1", "cloud_id": other_cloud}, 201)
    error_of(api.call("GET", "/regions", name="r1"), 500)  # two rows for a one-row lookup
    listed = api.ok("GET", "/regions", cloud_id=other_cloud)["regions"]
    assert [(r["name"], r["cloud_id"]) for r in listed] == [("r1", other_cloud)]


def test_filters_and_query_booleans(api):
    cloud, region = api.region()
    _, other = api.region("r2")
    api.host(cloud, region, "s1", variables={"v": 1})
    api.host(cloud, region, "k1", device_type="container")
    api.host(cloud, other, "x1")
    assert [h["name"] for h in api.ok("GET", "/hosts", region_id=region)["hosts"]] == ["s1", "k1"]
    assert [h["name"] for h in api.ok("GET", "/hosts", device_type="container")["hosts"]] == ["k1"]
    for false_word in ("n", "No", "FALSE", "", "0"):
        assert "variables" not in api.ok("GET", "/hosts", name="s1", details=false_word)["hosts"][0]
    assert api.ok("GET", "/hosts", name="s1", details="yes")["hosts"][0]["variables"] == {"v": 1}
    error_of(api.call("GET", "/hosts", vars="v:1"), 500)  # JSON filters need MySQL


# -- variables -----------------------------------------------------------------------

def test_put_variables_merges_and_delete_takes_a_key_array(api):
    cloud, region = api.region()
    host = api.host(cloud, region, "h", variables={"keep": 1, "change": 1})
    path = f"/hosts/{host['id']}/variables"
    assert api.ok("PUT", path, {"change": 2, "new": [1]}) == {"variables": {"keep": 1, "change": 2, "new": [1]}}
    assert api.call("DELETE", path, ["new", "never-there"]).status_code == 204
    assert api.ok("GET", path, **{"resolved-values": "false"}) == {"variables": {"keep": 1, "change": 2}}
    error_of(api.call("DELETE", path, {"new": 1}), 400)
    error_of(api.call("PUT", path, ["x"]), 400)
    error_of(api.call("PUT", path, {"k" * 256: 1}), 400)
    assert api.ok("PUT", path, {"k" * 255: 1})["variables"]["k" * 255] == 1


def test_host_variables_resolve_through_parents_cell_region_cloud_project(craton_server, api):
    cloud, region = api.region()
    cell = api.ok("POST", "/cells", {"name": "cell1", "region_id": region, "cloud_id": cloud,
                                     "variables": {"who": "cell", "cell_only": 1}}, 201)["id"]
    api.ok("PUT", f"/clouds/{cloud}/variables", {"who": "cloud", "cloud_only": 1})
    api.ok("PUT", f"/regions/{region}/variables", {"who": "region", "region_only": 1})
    project_vars = f"{craton_server.url}/v1/projects/{craton_server.project_id}/variables"
    assert requests.put(project_vars, json={"x": 1}, headers=craton_server.headers(), timeout=5).status_code == 401
    answer = requests.put(project_vars, json={"who": "project", "project_only": 1},
                          headers=craton_server.headers(admin=True), timeout=5)
    assert answer.status_code == 200  # project variables need an admin
    parent = api.host(cloud, region, "p", variables={"who": "parent", "parent_only": 1})
    child = api.host(cloud, region, "c", parent_id=parent["id"], cell_id=cell, variables={"own": 1})
    resolved = api.ok("GET", f"/hosts/{child['id']}/variables")["variables"]
    assert resolved == {"own": 1, "who": "parent", "parent_only": 1, "cell_only": 1, "region_only": 1,
                        "cloud_only": 1, "project_only": 1}
    assert api.ok("GET", f"/hosts/{child['id']}/variables", **{"resolved-values": "false"}) == \
        {"variables": {"own": 1}}
    listed = api.ok("GET", "/hosts", name="c", details="true")["hosts"][0]["variables"]
    assert listed == resolved
    own = api.ok("GET", "/hosts", name="c", details="true", **{"resolved-values": "no"})["hosts"][0]
    assert own["variables"] == {"own": 1}
    # other resources' variables endpoints give their own; GET of a region by id resolves
    assert api.ok("GET", f"/regions/{region}/variables")["variables"] == {"who": "region", "region_only": 1}
    assert api.ok("GET", f"/regions/{region}")["variables"]["cloud_only"] == 1


# -- labels ----------------------------------------------------------------------------

def test_labels_put_is_a_union_delete_removes_and_hosts_filter_by_label(api):
    cloud, region = api.region()
    host = api.host(cloud, region, "h", labels=["a"])
    other = api.host(cloud, region, "o")
    path = f"/hosts/{host['id']}/labels"
    assert api.ok("PUT", path, {"labels": ["b", "c"]}) == {"labels": ["a", "b", "c"]}
    assert api.call("DELETE", path, {"labels": ["a", "zz"]}).status_code == 204
    assert api.ok("GET", path) == {"labels": ["b", "c"]}
    assert "labels" not in api.ok("GET", f"/hosts/{host['id']}")
    assert [h["name"] for h in api.ok("GET", "/hosts", label="b")["hosts"]] == ["h"]
    assert api.ok("GET", "/hosts", label="a")["hosts"] == []
    error_of(api.call("PUT", path, {"labels": "b"}), 400)
    error_of(api.call("PUT", path, {"labels": ["b"], "extra": 1}), 400)
    assert api.ok("GET", f"/hosts/{other['id']}/labels") == {"labels": []}


def test_devices_lists_children_and_descendants(api):
    cloud, region = api.region()
    root = api.host(cloud, region, "root")
    mid = api.host(cloud, region, "mid", parent_id=root["id"])
    api.host(cloud, region, "leaf", parent_id=mid["id"])
    direct = api.ok("GET", "/devices", parent_id=root["id"])["devices"]
    assert [h["name"] for h in direct["hosts"]] == ["mid"] and direct["network-devices"] == []
    deep = api.ok("GET", "/devices", parent_id=root["id"], descendants="true")["devices"]["hosts"]
    assert sorted(h["name"] for h in deep) == ["leaf", "mid"]


# -- test knobs ------------------------------------------------------------------------

def test_log_counts_requests_per_method(craton_server, api):
    craton_server.app.reset_log()
    api.region()
    api.call("GET", "/clouds")
    assert craton_server.app.counts() == {"POST": 2, "GET": 1}
    assert [(e.method, e.path, e.status) for e in craton_server.app.log][-1] == ("GET", "/v1/clouds", 200)


def test_one_request_per_connection_as_http_1_0(craton_server, api):
    before = craton_server.connections
    for _ in range(5):
        assert api.call("GET", "/clouds").raw.version == 10
    assert craton_server.connections - before == 5


def test_injected_failures_with_retry_after_then_normal_service(craton_server, api):
    craton_server.app.inject(503, times=2, method="GET", path="^/v1/clouds$", retry_after=3)
    for _ in range(2):
        response = api.call("GET", "/clouds")
        assert response.status_code == 503 and response.headers["Retry-After"] == "3"
        assert response.json()["status"] == 503
    assert api.call("GET", "/clouds").status_code == 200
    craton_server.app.inject(429, times=1)
    assert api.call("GET", "/regions").status_code == 429


def test_injected_failure_after_applying(craton_server, api):
    craton_server.app.inject(503, method="POST", apply=True)
    assert api.call("POST", "/clouds", {"name": "c"}).status_code == 503
    assert [c["name"] for c in api.ok("GET", "/clouds")["clouds"]] == ["c"]


def test_slow_answers(craton_server, api):
    craton_server.app.slow(0.3, times=1)
    started = time.monotonic()
    api.call("GET", "/clouds")
    assert time.monotonic() - started >= 0.3
    with pytest.raises(requests.exceptions.ReadTimeout):
        craton_server.app.slow(1.0, times=1)
        api.session.get(f"{craton_server.url}/v1/clouds", timeout=0.2)


def test_dies_after_k_modifying_requests(craton_server, api):
    craton_server.app.die_after(2)
    api.ok("POST", "/clouds", {"name": "a"}, 201)
    api.ok("POST", "/clouds", {"name": "b"}, 201)
    assert api.call("GET", "/clouds").status_code == 200  # reads do not count
    with pytest.raises(requests.exceptions.ConnectionError):
        api.call("POST", "/clouds", {"name": "c"})
    with pytest.raises(requests.exceptions.ConnectionError):
        api.call("GET", "/clouds")
    craton_server.app.revive()
    assert [c["name"] for c in api.ok("GET", "/clouds")["clouds"]] == ["a", "b"]
    craton_server.app.die_after(0, apply_last=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.call("POST", "/clouds", {"name": "d"})
    craton_server.app.revive()
    assert [c["name"] for c in api.ok("GET", "/clouds")["clouds"]] == ["a", "b", "d"]


def test_stopped_server_refuses_connections(craton_server):
    url = craton_server.url
    craton_server.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/v1/clouds", timeout=2)


def test_tls_with_a_generated_ca(tmp_path):
    ca, cert, key = make_tls_files(str(tmp_path))
    server = CratonServer(ssl_context=tls_context(cert, key)).start()
    try:
        url = f"{server.url}/v1/clouds"
        assert url.startswith("https://")
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url, headers=server.headers(), timeout=5)
        assert requests.get(url, headers=server.headers(), timeout=5, verify=ca).status_code == 200
    finally:
        server.stop()
