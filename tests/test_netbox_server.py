"""The facts about NetBox 4.7 that the netbox storage backend builds on, checked on the real server.

Each test pins one assumption of /work/shared/docs/netbox-api.md (read-only tokens, all-or-nothing
bulk writes, If-Match, the changelog, jsonb's changes to JSON, VM naming rules); when a NetBox upgrade
changes one, the test that fails names it. Every test makes its own objects under its own prefix and
deletes them: several suites share one server.
"""

from __future__ import annotations

import json
import math

import pytest

from netbox_server import NetBoxClient

VM = "virtualization/virtual-machines/"
NO_PERMISSION = "You do not have permission to perform this action."
# Facts about the NetBox server, the same whichever Python asks: one version's suite checks them.
pytestmark = pytest.mark.once


def vm(objects, suffix: str, **fields) -> dict:
    """A VM of the test's own cluster."""
    if not hasattr(objects, "_cluster"):
        objects._cluster = objects.cluster()
    return objects.create(VM, {"name": objects.name(suffix), "cluster": objects._cluster["id"], **fields})


# ---------------------------------------------------------------- tokens

def test_the_read_only_token_reads_but_gets_403_on_a_write(netbox, netbox_objects):
    site = netbox_objects.site()
    reader = netbox.reader()
    seen = reader.get("dcim/sites/", params={"slug": site["slug"]})
    assert seen.status_code == 200 and [s["id"] for s in seen.json()["results"]] == [site["id"]]
    name = netbox_objects.name("ro")
    refused = reader.post("dcim/sites/", json={"name": name, "slug": name})
    assert refused.status_code == 403
    assert refused.json() == {"detail": NO_PERMISSION}
    assert reader.patch(f"dcim/sites/{site['id']}/", json={"description": "x"}).status_code == 403
    assert reader.delete(f"dcim/sites/{site['id']}/").status_code == 403
    assert netbox.client().count("dcim/sites/", slug=name) == 0
    assert netbox.client().get(f"dcim/sites/{site['id']}/").json()["description"] == ""


def test_either_a_read_only_token_or_a_view_only_user_is_enough_to_refuse_writes(netbox, netbox_objects):
    """The two ways netbox-api.md names: write_enabled=false on an admin's token, and a user with only
    the view permission even with a write-enabled token."""
    admin = netbox.client()
    users = {u["username"]: u["id"] for u in admin.get("users/users/").json()["results"]}
    made = {}
    for label, user, writable in (("admin-ro", netbox.admin_user, False), ("reader-rw", netbox.reader_user, True)):
        resp = admin.post("users/tokens/", json={"user": users[user], "write_enabled": writable,
                                                  "description": netbox_objects.name(label)})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        netbox_objects.adopt("users/tokens/", body["id"])
        # The API gives the key and the secret apart; the client joins them.
        assert len(body["key"]) == 12 and len(body["token"]) == 40
        made[label] = f"nbt_{body['key']}.{body['token']}"
    for label, token in made.items():
        client = NetBoxClient(netbox.api, token)
        assert client.get("dcim/sites/").status_code == 200, label
        name = netbox_objects.name(label)
        resp = client.post("dcim/sites/", json={"name": name, "slug": name})
        assert (resp.status_code, resp.json()) == (403, {"detail": NO_PERMISSION}), label
        assert admin.count("dcim/sites/", slug=name) == 0


def test_requests_without_a_valid_token_get_403_not_401(netbox):
    anonymous = NetBoxClient(netbox.api, None)
    resp = anonymous.get("dcim/sites/")
    assert (resp.status_code, resp.json()) == (403, {"detail": "Authentication credentials were not provided."})
    key, secret = netbox.write_token[len("nbt_"):].split(".")
    wrong = NetBoxClient(netbox.api, f"nbt_{key}.{'x' * len(secret)}").get("dcim/sites/")
    assert (wrong.status_code, wrong.json()) == (403, {"detail": "Invalid v2 token"})


# ---------------------------------------------------------------- bulk writes

def test_bulk_create_is_all_or_nothing(netbox, netbox_objects):
    cluster = netbox_objects.cluster()
    names = [netbox_objects.name(f"bulk-{i}") for i in range(3)]
    batch = [{"name": names[0], "cluster": cluster["id"]}, {"name": names[1]},
             {"name": names[2], "cluster": cluster["id"]}]
    resp = netbox.client().post(VM, json=batch)
    assert resp.status_code == 400
    body = resp.json()
    assert body["detail"] == "1 of 3 objects could not be created."
    assert [e["index"] for e in body["errors"]] == [1]
    assert body["errors"][0]["errors"] == {
        "__all__": ["A virtual machine must be assigned to a site, cluster, or device."]}
    assert netbox.client().count(VM, name__isw=netbox_objects.prefix) == 0  # the valid two were rolled back too


def test_a_name_repeated_inside_one_batch_fails_the_whole_batch(netbox, netbox_objects):
    cluster = netbox_objects.cluster()
    batch = [{"name": netbox_objects.name(n), "cluster": cluster["id"]} for n in ("a", "b", "a")]
    resp = netbox.client().post(VM, json=batch)
    assert resp.status_code == 400
    assert [e["index"] for e in resp.json()["errors"]] == [2]
    assert netbox.client().count(VM, cluster_id=cluster["id"]) == 0


def test_bulk_delete_with_an_unknown_id_deletes_nothing(netbox, netbox_objects):
    kept = vm(netbox_objects, "kept")
    resp = netbox.client().delete(VM, json=[{"id": kept["id"]}, {"id": 2_000_000_000}])
    assert resp.status_code == 400
    assert resp.json()["detail"] == "1 of 2 objects could not be found."
    assert netbox.client().get(f"{VM}{kept['id']}/").status_code == 200


def test_a_successful_bulk_create_answers_in_request_order(netbox, netbox_objects):
    cluster = netbox_objects.cluster()
    names = [netbox_objects.name(n) for n in ("z", "a", "m")]
    resp = netbox.client().post(VM, json=[{"name": n, "cluster": cluster["id"]} for n in names])
    assert resp.status_code == 201, resp.text
    for made in resp.json():
        netbox_objects.adopt(VM, made["id"])
    assert [m["name"] for m in resp.json()] == names


# ---------------------------------------------------------------- optimistic locking

def test_if_match_with_a_stale_etag_gets_412_and_changes_nothing(netbox, netbox_objects):
    client = netbox.client()
    made = vm(netbox_objects, "etag")
    path = f"{VM}{made['id']}/"
    first = client.get(path).headers["ETag"]
    assert first.startswith('W/"')  # weak, built from last_updated
    updated = client.patch(path, json={"description": "first writer"}, headers={"If-Match": first})
    assert updated.status_code == 200, updated.text
    current = updated.headers["ETag"]
    assert current != first
    stale = client.patch(path, json={"description": "second writer"}, headers={"If-Match": first})
    assert stale.status_code == 412
    assert stale.json() == {"detail": "Precondition failed."}
    assert stale.headers["ETag"] == current  # the refusal tells the current tag
    assert client.get(path).json()["description"] == "first writer"
    strong = current[2:]  # the same value without W/ does not match
    assert client.patch(path, json={"description": "x"}, headers={"If-Match": strong}).status_code == 412
    stale_delete = client.delete(path, headers={"If-Match": first})
    assert stale_delete.status_code == 412
    assert client.get(path).status_code == 200


def test_lists_carry_no_etag_and_if_none_match_is_ignored(netbox, netbox_objects):
    client = netbox.client()
    made = vm(netbox_objects, "list")
    assert "ETag" not in client.get(VM, params={"id": made["id"]}).headers
    tag = client.get(f"{VM}{made['id']}/").headers["ETag"]
    assert client.get(f"{VM}{made['id']}/", headers={"If-None-Match": tag}).status_code == 200  # never 304


# ---------------------------------------------------------------- changelog

def test_changelog_message_lands_in_object_changes_with_the_user_and_request_id(netbox, netbox_objects):
    client = netbox.client()
    made = vm(netbox_objects, "log")
    message = f"osa-inventory test {netbox_objects.prefix}"
    resp = client.patch(f"{VM}{made['id']}/", json={"description": "changed", "changelog_message": message})
    assert resp.status_code == 200, resp.text
    request_id = resp.headers["X-Request-ID"]
    changes = client.get("core/object-changes/", params={
        "changed_object_type": "virtualization.virtualmachine", "changed_object_id": made["id"],
        "action": "update"}).json()["results"]
    assert len(changes) == 1
    change = changes[0]
    assert change["message"] == message
    assert change["user_name"] == netbox.admin_user and change["user"]["username"] == netbox.admin_user
    assert change["request_id"] == request_id
    assert change["prechange_data"]["description"] == "" and change["postchange_data"]["description"] == "changed"
    same_request = client.get("core/object-changes/", params={"request_id": request_id}).json()
    assert [c["id"] for c in same_request["results"]] == [change["id"]]


def test_a_changelog_message_over_200_characters_is_a_500_and_changes_nothing(netbox, netbox_objects):
    client = netbox.client()
    made = vm(netbox_objects, "long")
    path = f"{VM}{made['id']}/"
    assert client.patch(path, json={"description": "a", "changelog_message": "m" * 200}).status_code == 200
    resp = client.patch(path, json={"description": "b", "changelog_message": "m" * 201})
    assert resp.status_code == 500  # not a 400: the client must keep messages short itself
    assert resp.json()["exception"] == "DataError"
    assert client.get(path).json()["description"] == "a"


def test_object_changes_cannot_be_written(netbox):
    client = netbox.client()
    assert client.post("core/object-changes/", json={}).status_code == 405


# ---------------------------------------------------------------- JSON in jsonb

def local_context_round_trip(client, objects, suffix: str, body: str):
    """PATCH a raw JSON body onto a new VM; (response, the local_context_data read back or None)."""
    made = vm(objects, suffix)
    path = f"{VM}{made['id']}/"
    resp = client.patch(path, data=body.encode(), headers={"Content-Type": "application/json"})
    if resp.status_code != 200:
        return resp, None
    return resp, client.get(path).json()["local_context_data"]


def test_jsonb_orders_keys_by_length_then_bytes_at_every_level(netbox, netbox_objects):
    sent = '{"local_context_data": {"zz": {"b": 1, "aa": 2, "a": 3}, "a": [{"yy": 1, "x": 2}], "mmm": 0, "b": 1}}'
    resp, back = local_context_round_trip(netbox.client(), netbox_objects, "order", sent)
    assert resp.status_code == 200, resp.text
    assert list(back) == ["a", "b", "zz", "mmm"]
    assert list(back["zz"]) == ["a", "b", "aa"]
    assert list(back["a"][0]) == ["x", "yy"]
    assert back == json.loads(sent)["local_context_data"]  # the same values, only the order moved


def test_jsonb_turns_negative_zero_into_zero_and_keeps_numbers_otherwise(netbox, netbox_objects):
    sent = ('{"local_context_data": {"neg_zero": -0.0, "one": 1.0, "tenth": 0.1, "big": 9223372036854775808, '
            '"huge": 1180591620717411303424, "tiny": 1e-07, "precise": 0.30000000000000004, "exp": 1e300}}')
    resp, back = local_context_round_trip(netbox.client(), netbox_objects, "numbers", sent)
    assert resp.status_code == 200, resp.text
    assert back["neg_zero"] == 0.0 and math.copysign(1, back["neg_zero"]) == 1.0
    assert back["one"] == 1.0 and isinstance(back["one"], float)
    assert (back["tenth"], back["tiny"], back["precise"]) == (0.1, 1e-07, 0.30000000000000004)
    assert (back["big"], back["huge"]) == (2 ** 63, 2 ** 70)
    assert back["exp"] == 10 ** 300 and isinstance(back["exp"], int)  # a float comes back as a 301-digit int


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_jsonb_refuses_nan_and_infinity_with_400(netbox, netbox_objects, value):
    sent = '{"local_context_data": {"x": VALUE}}'.replace("VALUE", value)
    resp, _ = local_context_round_trip(netbox.client(), netbox_objects, "nan", sent)
    assert resp.status_code == 400
    assert "Out of range float values are not JSON compliant" in resp.json()["detail"]


def test_local_context_data_must_be_an_object(netbox, netbox_objects):
    resp, _ = local_context_round_trip(netbox.client(), netbox_objects, "list", '{"local_context_data": [1, 2]}')
    assert resp.status_code == 400
    assert resp.json() == {"local_context_data": ['JSON data must be in object form. Example: {"foo": 123}']}


# ---------------------------------------------------------------- names

def test_a_vm_name_is_at_most_64_characters(netbox, netbox_objects):
    cluster = netbox_objects.cluster()
    longest = netbox_objects.name("x" * (64 - len(netbox_objects.prefix) - 1))
    assert len(longest) == 64
    netbox_objects.create(VM, {"name": longest, "cluster": cluster["id"]})
    resp = netbox.client().post(VM, json={"name": longest[:-1] + "yz", "cluster": cluster["id"]})
    assert resp.status_code == 400
    assert resp.json() == {"name": ["Ensure this field has no more than 64 characters."]}


def test_vm_names_are_unique_per_cluster_regardless_of_case(netbox, netbox_objects):
    made = vm(netbox_objects, "galera_container-a1b2c3d4")
    resp = netbox.client().post(VM, json={"name": made["name"].upper(), "cluster": made["cluster"]["id"]})
    assert resp.status_code == 400
    assert "Virtual machine name must be unique per cluster and tenant." in json.dumps(resp.json())
    other = netbox_objects.cluster("other")
    netbox_objects.create(VM, {"name": made["name"].upper(), "cluster": other["id"]})  # another cluster: fine


# ---------------------------------------------------------------- queries

def test_an_unknown_filter_is_ignored_not_refused(netbox, netbox_objects):
    """A misspelt filter lists everything: a "find, then delete" must check what it found."""
    client = netbox.client()
    made = vm(netbox_objects, "filter")
    vm(netbox_objects, "other")
    cluster = made["cluster"]["id"]
    assert client.count(VM, cluster_id=cluster) == 2
    assert client.count(VM, cluster_id=cluster, name=made["name"]) == 1
    assert client.count(VM, cluster_id=cluster, nmae=made["name"]) == 2
    assert client.count(VM, cluster_id=cluster, name__re=f"^{made['name']}$") == 2
    assert client.count(VM, cluster_id=cluster, name__ic=made["name"].upper()) == 1
