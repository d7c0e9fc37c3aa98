"""generate/placement.py: how many containers of each type the config asks each host for, in process.

inventory-manage's stale-entry and --move checks read these counts; the generator's mutation run
(mutation/setup.cfg) runs this file, so each rule here is pinned by a case of its own.
"""

from __future__ import annotations

from osa_inventory.generate.config import Skeleton
from osa_inventory.generate.placement import expected_counts


def skeleton(**entries: dict) -> Skeleton:
    """A skeleton of ``entries`` (container_skel key -> entry), processed in the order given."""
    return Skeleton(container_skel=dict(entries), container_order=list(entries))


GALERA = {"belongs_to": ["shared-infra_containers"], "contains": ["galera"]}
UTILITY = {"belongs_to": ["utility_containers", "shared-infra_containers"], "contains": ["utility"]}
NOVA = {"belongs_to": ["compute_containers"], "contains": ["nova_compute"], "properties": {"is_metal": True}}


def test_one_container_per_host_by_default_and_affinity_asks_for_more():
    config = {"shared-infra_hosts": {"infra1": {"ip": "10.0.0.1"}, "infra2": {"affinity": {"galera": 3}}}}
    assert expected_counts(config, skeleton(galera=GALERA)) == {("infra1", "galera"): (1, False),
                                                                ("infra2", "galera"): (3, False)}


def test_an_affinity_written_as_text_counts_as_its_number():
    config = {"shared_infra_hosts": {"infra1": {"affinity": {"galera": "2"}}}}
    assert expected_counts(config, skeleton(galera=GALERA)) == {("infra1", "galera"): (2, False)}


def test_an_affinity_of_zero_asks_for_none_but_the_host_is_not_metal():
    config = {"shared_infra_hosts": {"infra1": {"affinity": {"galera": 0}}}}
    assert expected_counts(config, skeleton(galera=GALERA)) == {("infra1", "galera"): (0, False)}


def test_an_affinity_for_another_type_leaves_the_default():
    config = {"shared_infra_hosts": {"infra1": {"affinity": {"utility": 4}}}}
    assert expected_counts(config, skeleton(galera=GALERA)) == {("infra1", "galera"): (1, False)}


def test_metal_entries_run_on_the_host():
    config = {"compute_hosts": {"compute1": {}, "compute2": {"affinity": {"nova": 2}}}}
    assert expected_counts(config, skeleton(nova=NOVA)) == {("compute1", "nova"): (0, True),
                                                            ("compute2", "nova"): (0, True)}


def test_no_containers_on_a_host_or_globally_puts_every_service_on_the_host():
    config = {"shared_infra_hosts": {"infra1": {"no_containers": True, "affinity": {"galera": 2}}, "infra2": None}}
    assert expected_counts(config, skeleton(galera=GALERA)) == {("infra1", "galera"): (0, True),
                                                                ("infra2", "galera"): (1, False)}
    config["global_overrides"] = {"no_containers": True}
    assert expected_counts(config, skeleton(galera=GALERA)) == {("infra1", "galera"): (0, True),
                                                                ("infra2", "galera"): (0, True)}


def test_a_top_level_no_containers_is_no_setting():
    config = {"no_containers": True, "shared_infra_hosts": {"infra1": {}}}
    assert expected_counts(config, skeleton(galera=GALERA)) == {("infra1", "galera"): (1, False)}


def test_a_host_fed_through_two_groups_gets_the_larger_count_and_is_metal_only_if_both_say_so():
    config = {"utility_hosts": {"infra1": {"no_containers": True}},
              "shared_infra_hosts": {"infra1": {"affinity": {"utility": 2}}, "infra2": {}}}
    assert expected_counts(config, skeleton(utility=UTILITY)) == {("infra1", "utility"): (2, False),
                                                                  ("infra2", "utility"): (1, False)}
    config["shared_infra_hosts"]["infra1"]["no_containers"] = True
    assert expected_counts(config, skeleton(utility=UTILITY))[("infra1", "utility")] == (0, True)
    # The first group's answer is kept when the second asks for less, or would put it on the host.
    config = {"utility_hosts": {"infra1": {"affinity": {"utility": 3}}},
              "shared_infra_hosts": {"infra1": {"no_containers": True}}}
    assert expected_counts(config, skeleton(utility=UTILITY)) == {("infra1", "utility"): (3, False)}


def test_entries_that_place_nothing_are_left_out():
    entries = {"empty": None, "galera": GALERA, "no_groups": {"contains": ["x"]},
               "no_contents": {"belongs_to": ["shared-infra_containers"], "contains": []},
               "not_a_container_group": {"belongs_to": ["shared-infra_hosts"], "contains": ["y"]},
               "unfed": {"belongs_to": ["nobody_containers"], "contains": ["z"]}}
    config = {"shared_infra_hosts": {"infra1": {}}}
    assert expected_counts(config, skeleton(**entries)) == {("infra1", "galera"): (1, False)}
    # Any of them before one that places something stops nothing.
    for key in entries:
        reordered = {key: entries[key], "galera": GALERA}
        assert expected_counts(config, skeleton(**reordered)) == {("infra1", "galera"): (1, False)}, key


def test_only_entries_in_the_processing_order_count():
    unordered = Skeleton(container_skel={"galera": GALERA, "nova": NOVA}, container_order=["nova"])
    config = {"shared_infra_hosts": {"infra1": {}}, "compute_hosts": {"compute1": {}}}
    assert expected_counts(config, unordered) == {("compute1", "nova"): (0, True)}


def test_properties_without_is_metal_and_an_empty_properties_are_containers():
    for properties in (None, {}, {"is_metal": False}, {"service_name": "galera"}):
        entry = dict(GALERA, properties=properties)
        assert expected_counts({"shared_infra_hosts": {"infra1": {}}}, skeleton(galera=entry)) == {
            ("infra1", "galera"): (1, False)}, properties


def test_an_affinity_of_none_is_the_default():
    config = {"shared_infra_hosts": {"infra1": {"affinity": None}}}
    assert expected_counts(config, skeleton(galera=GALERA)) == {("infra1", "galera"): (1, False)}
