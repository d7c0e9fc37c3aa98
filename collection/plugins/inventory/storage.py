"""Ansible inventory plugin ``osa.inventory.storage``: the OpenStack-Ansible inventory from its storage backend.

A thin adapter over the osa_inventory library (installed into Ansible's Python, see docs/ansible.md):
each parse is one :func:`osa_inventory.api.refresh`, the run the inventory script makes (same
generation, lock, store and change record, the record naming this plugin and the source file), added
to Ansible's inventory as the script's output would be, then the ``constructed`` features. Ansible's
inventory cache holds a result together with the digest of its inputs and is used only while both the
inputs and the stored inventory are unchanged (docs/ansible.md, "Caching").
"""

from __future__ import annotations

import contextlib
import json
import logging
import os

import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.helpers import get_group_vars
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.vars import combine_vars

try:  # ansible-core 2.19+ (data tagging): values trusted as templates, as the script's output is
    from ansible.template import trust_as_template
except ImportError:  # 2.17 and 2.18: plain values are templated as they are
    trust_as_template = None

try:
    from osa_inventory import api
    from osa_inventory.commands.stdout_guard import stdout_diverted
    from osa_inventory.storage.options import closest
except ImportError as exc:  # reported by parse(), for a source file of this plugin only
    api = None
    MISSING_LIBRARY = str(exc)

DOCUMENTATION = r"""
name: storage
short_description: OpenStack-Ansible inventory from a pluggable storage backend (filesystem, etcd, Craton, NetBox)
description:
  - Generates the OpenStack-Ansible inventory from the deployment config (openstack_user_config.yml, conf.d,
    env.d) over the inventory stored by the backend osa.ini selects, stores it when it changed, and adds it
    to Ansible's inventory; the same run, lock, store and change record as the inventory script
    dynamic_inventory.py, whose output it equals.
  - Reads a source file whose name ends in C(.osa.yml) or C(.osa.yaml), holding C(plugin) V(osa.inventory.storage).
  - Every osa.ini option may be set here too, named V(backend), V(timeout), ... for [inventory] and
    V(<section>_<option>) for a built-in backend's section (V(etcd_endpoints)); each is passed on as its
    OSA_INVENTORY_* variable, over osa.ini. Unset, osa.ini's value applies.
  - Relative paths are relative to Ansible's working directory.
requirements:
  - The osa-inventory Python library, importable by the Python that runs Ansible (docs/ansible.md).
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin; it makes the file a source of this plugin.
    required: true
    choices: ['osa.inventory.storage']
  osa_ini:
    description:
      - The osa.ini that selects the storage backend and holds its options.
      - Unset, C($OSA_INI), else /etc/ansible/osa.ini; without that file the inventory is
        openstack_inventory.json in the config folder (the filesystem backend).
    type: path
    env:
      - name: OSA_INI
    ini:
      - section: osa_inventory
        key: osa_ini
  config_dir:
    description: The folder holding openstack_user_config.yml, conf.d/ and env.d/.
    type: path
    default: /etc/openstack_deploy
    env:
      - name: OSA_CONFIG_DIR
    ini:
      - section: osa_inventory
        key: config_dir
  environment:
    description:
      - The folder that holds the base env.d/ skeleton (the inventory script's C(--environment)).
      - Unset, the one shipped with the library.
    type: path
    env:
      - name: OSA_ENVIRONMENT_DIR
    ini:
      - section: osa_inventory
        key: environment
  # The options of osa.ini, as scripts/render-options.py --ansible prints them (tests/test_declarations.py).
  backend:
    description:
    - '[inventory] backend of osa.ini: the section (storage backend) that stores the inventory.'
    - 'osa.ini''s default: filesystem.'
    type: str
    env:
    - name: OSA_INVENTORY_BACKEND
    ini:
    - section: osa_inventory
      key: backend
  plugin_paths:
    description:
    - '[inventory] plugin_paths of osa.ini: folders searched for storage plugins before the built-in lib/plugins/.'
    type: str
    env:
    - name: OSA_INVENTORY_PLUGIN_PATHS
    ini:
    - section: osa_inventory
      key: plugin_paths
  timeout:
    description:
    - '[inventory] timeout of osa.ini: seconds any one step of plugin code may take.'
    - 'osa.ini''s default: 600.'
    type: float
    env:
    - name: OSA_INVENTORY_TIMEOUT
    ini:
    - section: osa_inventory
      key: timeout
  unknown_host_groups:
    description:
    - '[inventory] unknown_host_groups of osa.ini: a *_hosts key of the user config one typo from a host group env.d
      knows: refuse it, or warn.'
    - 'osa.ini''s default: error.'
    type: str
    choices:
    - error
    - warn
    env:
    - name: OSA_INVENTORY_UNKNOWN_HOST_GROUPS
    ini:
    - section: osa_inventory
      key: unknown_host_groups
  filesystem_path:
    description:
    - '[filesystem] path of osa.ini: folder holding openstack_inventory.json.'
    type: path
    env:
    - name: OSA_INVENTORY_FILESYSTEM_PATH
    ini:
    - section: osa_inventory
      key: filesystem_path
  filesystem_backups:
    description:
    - '[filesystem] backups of osa.ini: earlier versions the backup archive keeps.'
    - 'osa.ini''s default: 15.'
    type: int
    env:
    - name: OSA_INVENTORY_FILESYSTEM_BACKUPS
    ini:
    - section: osa_inventory
      key: filesystem_backups
  filesystem_lock_timeout:
    description:
    - '[filesystem] lock_timeout of osa.ini: seconds to wait for another run''s lock.'
    - 'osa.ini''s default: 300.'
    type: float
    env:
    - name: OSA_INVENTORY_FILESYSTEM_LOCK_TIMEOUT
    ini:
    - section: osa_inventory
      key: filesystem_lock_timeout
  filesystem_group:
    description:
    - '[filesystem] group of osa.ini: group of the inventory, its backups and files set aside.'
    type: str
    env:
    - name: OSA_INVENTORY_FILESYSTEM_GROUP
    ini:
    - section: osa_inventory
      key: filesystem_group
  filesystem_mode:
    description:
    - '[filesystem] mode of osa.ini: octal mode of those files, e.g. 0640 (no execute, only the owner writes).'
    type: str
    env:
    - name: OSA_INVENTORY_FILESYSTEM_MODE
    ini:
    - section: osa_inventory
      key: filesystem_mode
  etcd_endpoints:
    description:
    - '[etcd] endpoints of osa.ini: client URLs of the members, comma separated.'
    - 'osa.ini''s default: http://127.0.0.1:2379.'
    type: str
    env:
    - name: OSA_INVENTORY_ETCD_ENDPOINTS
    ini:
    - section: osa_inventory
      key: etcd_endpoints
  etcd_prefix:
    description:
    - '[etcd] prefix of osa.ini: key prefix of this deployment.'
    - 'osa.ini''s default: /openstack-ansible/inventory/default.'
    type: str
    env:
    - name: OSA_INVENTORY_ETCD_PREFIX
    ini:
    - section: osa_inventory
      key: etcd_prefix
  etcd_deployment:
    description:
    - '[etcd] deployment of osa.ini: name of this deployment, stored at the prefix.'
    type: str
    env:
    - name: OSA_INVENTORY_ETCD_DEPLOYMENT
    ini:
    - section: osa_inventory
      key: etcd_deployment
  etcd_username:
    description:
    - '[etcd] username of osa.ini: etcd user.'
    type: str
    env:
    - name: OSA_INVENTORY_ETCD_USERNAME
    ini:
    - section: osa_inventory
      key: etcd_username
  etcd_password:
    description:
    - '[etcd] password of osa.ini: etcd password.'
    - 'A secret: set OSA_INVENTORY_ETCD_PASSWORD or osa.ini (mode 0600) rather than a source file others may read.'
    type: str
    env:
    - name: OSA_INVENTORY_ETCD_PASSWORD
    ini:
    - section: osa_inventory
      key: etcd_password
  etcd_ca_cert:
    description:
    - '[etcd] ca_cert of osa.ini: CA bundle of the members'' certificates.'
    type: path
    env:
    - name: OSA_INVENTORY_ETCD_CA_CERT
    ini:
    - section: osa_inventory
      key: etcd_ca_cert
  etcd_cert:
    description:
    - '[etcd] cert of osa.ini: client certificate.'
    type: path
    env:
    - name: OSA_INVENTORY_ETCD_CERT
    ini:
    - section: osa_inventory
      key: etcd_cert
  etcd_key:
    description:
    - '[etcd] key of osa.ini: client certificate''s key.'
    type: path
    env:
    - name: OSA_INVENTORY_ETCD_KEY
    ini:
    - section: osa_inventory
      key: etcd_key
  etcd_timeout:
    description:
    - '[etcd] timeout of osa.ini: seconds per request.'
    - 'osa.ini''s default: 10.'
    type: float
    env:
    - name: OSA_INVENTORY_ETCD_TIMEOUT
    ini:
    - section: osa_inventory
      key: etcd_timeout
  etcd_lock_ttl:
    description:
    - '[etcd] lock_ttl of osa.ini: seconds the lock outlives a dead run.'
    - 'osa.ini''s default: 60.'
    type: int
    env:
    - name: OSA_INVENTORY_ETCD_LOCK_TTL
    ini:
    - section: osa_inventory
      key: etcd_lock_ttl
  etcd_lock_timeout:
    description:
    - '[etcd] lock_timeout of osa.ini: seconds to wait for another run''s lock.'
    - 'osa.ini''s default: 300.'
    type: float
    env:
    - name: OSA_INVENTORY_ETCD_LOCK_TIMEOUT
    ini:
    - section: osa_inventory
      key: etcd_lock_timeout
  etcd_max_txn_ops:
    description:
    - '[etcd] max_txn_ops of osa.ini: operations per transaction.'
    - 'osa.ini''s default: 128.'
    type: int
    env:
    - name: OSA_INVENTORY_ETCD_MAX_TXN_OPS
    ini:
    - section: osa_inventory
      key: etcd_max_txn_ops
  craton_url:
    description:
    - '[craton] url of osa.ini: API root; /v1 is added.'
    type: str
    env:
    - name: OSA_INVENTORY_CRATON_URL
    ini:
    - section: osa_inventory
      key: craton_url
  craton_project_id:
    description:
    - '[craton] project_id of osa.ini: project UUID (local auth).'
    type: str
    env:
    - name: OSA_INVENTORY_CRATON_PROJECT_ID
    ini:
    - section: osa_inventory
      key: craton_project_id
  craton_username:
    description:
    - '[craton] username of osa.ini: user name (local auth).'
    type: str
    env:
    - name: OSA_INVENTORY_CRATON_USERNAME
    ini:
    - section: osa_inventory
      key: craton_username
  craton_api_key:
    description:
    - '[craton] api_key of osa.ini: API key (local auth).'
    - 'A secret: set OSA_INVENTORY_CRATON_API_KEY or osa.ini (mode 0600) rather than a source file others may read.'
    type: str
    env:
    - name: OSA_INVENTORY_CRATON_API_KEY
    ini:
    - section: osa_inventory
      key: craton_api_key
  craton_token:
    description:
    - '[craton] token of osa.ini: a Keystone token instead of local auth.'
    - 'A secret: set OSA_INVENTORY_CRATON_TOKEN or osa.ini (mode 0600) rather than a source file others may read.'
    type: str
    env:
    - name: OSA_INVENTORY_CRATON_TOKEN
    ini:
    - section: osa_inventory
      key: craton_token
  craton_cloud:
    description:
    - '[craton] cloud of osa.ini: name of the cloud holding this deployment.'
    type: str
    env:
    - name: OSA_INVENTORY_CRATON_CLOUD
    ini:
    - section: osa_inventory
      key: craton_cloud
  craton_region:
    description:
    - '[craton] region of osa.ini: name of the region holding this deployment.'
    type: str
    env:
    - name: OSA_INVENTORY_CRATON_REGION
    ini:
    - section: osa_inventory
      key: craton_region
  craton_verify:
    description:
    - '[craton] verify of osa.ini: TLS: true, false or a CA bundle.'
    - 'osa.ini''s default: true.'
    type: str
    env:
    - name: OSA_INVENTORY_CRATON_VERIFY
    ini:
    - section: osa_inventory
      key: craton_verify
  craton_timeout:
    description:
    - '[craton] timeout of osa.ini: seconds per request.'
    - 'osa.ini''s default: 30.'
    type: float
    env:
    - name: OSA_INVENTORY_CRATON_TIMEOUT
    ini:
    - section: osa_inventory
      key: craton_timeout
  craton_retries:
    description:
    - '[craton] retries of osa.ini: extra attempts of idempotent requests.'
    - 'osa.ini''s default: 3.'
    type: int
    env:
    - name: OSA_INVENTORY_CRATON_RETRIES
    ini:
    - section: osa_inventory
      key: craton_retries
  craton_backoff:
    description:
    - '[craton] backoff of osa.ini: first back-off delay in seconds.'
    - 'osa.ini''s default: 0.5.'
    type: float
    env:
    - name: OSA_INVENTORY_CRATON_BACKOFF
    ini:
    - section: osa_inventory
      key: craton_backoff
  craton_cache_dir:
    description:
    - '[craton] cache_dir of osa.ini: folder of the local cache.'
    type: path
    env:
    - name: OSA_INVENTORY_CRATON_CACHE_DIR
    ini:
    - section: osa_inventory
      key: craton_cache_dir
  craton_cache:
    description:
    - '[craton] cache of osa.ini: keep the local cache.'
    - 'osa.ini''s default: true.'
    type: bool
    env:
    - name: OSA_INVENTORY_CRATON_CACHE
    ini:
    - section: osa_inventory
      key: craton_cache
  craton_create:
    description:
    - '[craton] create of osa.ini: create the cloud and region when missing.'
    - 'osa.ini''s default: true.'
    type: bool
    env:
    - name: OSA_INVENTORY_CRATON_CREATE
    ini:
    - section: osa_inventory
      key: craton_create
  craton_change_records:
    description:
    - '[craton] change_records of osa.ini: change records kept in the region for --history.'
    - 'osa.ini''s default: 20.'
    type: int
    env:
    - name: OSA_INVENTORY_CRATON_CHANGE_RECORDS
    ini:
    - section: osa_inventory
      key: craton_change_records
  netbox_url:
    description:
    - '[netbox] url of osa.ini: NetBox''s address, e.g. https://netbox.example.com (/api is added).'
    type: str
    env:
    - name: OSA_INVENTORY_NETBOX_URL
    ini:
    - section: osa_inventory
      key: netbox_url
  netbox_token:
    description:
    - '[netbox] token of osa.ini: a v2 API token, nbt_<key>.<secret>.'
    - 'A secret: set OSA_INVENTORY_NETBOX_TOKEN or osa.ini (mode 0600) rather than a source file others may read.'
    type: str
    env:
    - name: OSA_INVENTORY_NETBOX_TOKEN
    ini:
    - section: osa_inventory
      key: netbox_token
  netbox_verify:
    description:
    - '[netbox] verify of osa.ini: check NetBox''s TLS certificate.'
    - 'osa.ini''s default: true.'
    type: bool
    env:
    - name: OSA_INVENTORY_NETBOX_VERIFY
    ini:
    - section: osa_inventory
      key: netbox_verify
  netbox_ca_cert:
    description:
    - '[netbox] ca_cert of osa.ini: CA bundle that signed NetBox''s certificate.'
    type: path
    env:
    - name: OSA_INVENTORY_NETBOX_CA_CERT
    ini:
    - section: osa_inventory
      key: netbox_ca_cert
  netbox_timeout:
    description:
    - '[netbox] timeout of osa.ini: seconds per request.'
    - 'osa.ini''s default: 300.'
    type: float
    env:
    - name: OSA_INVENTORY_NETBOX_TIMEOUT
    ini:
    - section: osa_inventory
      key: netbox_timeout
  netbox_site:
    description:
    - '[netbox] site of osa.ini: slug of the site holding this deployment''s devices and clusters.'
    type: str
    env:
    - name: OSA_INVENTORY_NETBOX_SITE
    ini:
    - section: osa_inventory
      key: netbox_site
  netbox_tag:
    description:
    - '[netbox] tag of osa.ini: slug of the tag marking every object this deployment owns.'
    - 'osa.ini''s default: osa-inventory.'
    type: str
    env:
    - name: OSA_INVENTORY_NETBOX_TAG
    ini:
    - section: osa_inventory
      key: netbox_tag
  netbox_vrf:
    description:
    - '[netbox] vrf of osa.ini: name of the VRF of the addresses (default: the global table).'
    type: str
    env:
    - name: OSA_INVENTORY_NETBOX_VRF
    ini:
    - section: osa_inventory
      key: netbox_vrf
  netbox_cluster_type:
    description:
    - '[netbox] cluster_type of osa.ini: slug of the cluster type of the per-host clusters.'
    - 'osa.ini''s default: osa-lxc.'
    type: str
    env:
    - name: OSA_INVENTORY_NETBOX_CLUSTER_TYPE
    ini:
    - section: osa_inventory
      key: netbox_cluster_type
  netbox_device_role:
    description:
    - '[netbox] device_role of osa.ini: slug of the role of physical hosts.'
    - 'osa.ini''s default: osa-host.'
    type: str
    env:
    - name: OSA_INVENTORY_NETBOX_DEVICE_ROLE
    ini:
    - section: osa_inventory
      key: netbox_device_role
  netbox_vm_role:
    description:
    - '[netbox] vm_role of osa.ini: slug of the role of containers.'
    - 'osa.ini''s default: osa-container.'
    type: str
    env:
    - name: OSA_INVENTORY_NETBOX_VM_ROLE
    ini:
    - section: osa_inventory
      key: netbox_vm_role
  netbox_device_type:
    description:
    - '[netbox] device_type of osa.ini: slug of the device type of new physical hosts.'
    - 'osa.ini''s default: osa-host.'
    type: str
    env:
    - name: OSA_INVENTORY_NETBOX_DEVICE_TYPE
    ini:
    - section: osa_inventory
      key: netbox_device_type
  netbox_create:
    description:
    - '[netbox] create of osa.ini: create the site, tag, roles, types and custom field when missing.'
    - 'osa.ini''s default: true.'
    type: bool
    env:
    - name: OSA_INVENTORY_NETBOX_CREATE
    ini:
    - section: osa_inventory
      key: netbox_create
  netbox_cache_dir:
    description:
    - '[netbox] cache_dir of osa.ini: folder of the local cache.'
    type: path
    env:
    - name: OSA_INVENTORY_NETBOX_CACHE_DIR
    ini:
    - section: osa_inventory
      key: netbox_cache_dir
  netbox_cache:
    description:
    - '[netbox] cache of osa.ini: keep the local cache.'
    - 'osa.ini''s default: true.'
    type: bool
    env:
    - name: OSA_INVENTORY_NETBOX_CACHE
    ini:
    - section: osa_inventory
      key: netbox_cache
  netbox_change_records:
    description:
    - '[netbox] change_records of osa.ini: change records kept for --history.'
    - 'osa.ini''s default: 20.'
    type: int
    env:
    - name: OSA_INVENTORY_NETBOX_CHANGE_RECORDS
    ini:
    - section: osa_inventory
      key: netbox_change_records
"""

EXAMPLES = r"""
# inventory.osa.yml: OpenStack-Ansible's layout, osa.ini choosing the backend
plugin: osa.inventory.storage
config_dir: /etc/openstack_deploy
osa_ini: /etc/ansible/osa.ini

# The same, with the backend chosen here, cached, and grouped by container type
plugin: osa.inventory.storage
backend: etcd
etcd_endpoints: https://10.0.0.5:2379
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /var/cache/ansible-inventory
keyed_groups:
  - key: component | default('')
    prefix: component
"""

#: What the change records (inventory-manage --history) name as the command, before the source file.
COMMAND = "ansible inventory plugin osa.inventory.storage"
SUFFIXES = (".osa.yml", ".osa.yaml")
#: Said at -vvv when the cache answers (its inputs and the stored inventory are unchanged).
CACHE_USED = "the cached inventory is current (same inputs, same stored inventory)"
#: The osa.ini options of DOCUMENTATION: each is passed on as the variable its ``env`` names.
PASSED_PREFIX = "OSA_INVENTORY_"
_OPTIONS = yaml.safe_load(DOCUMENTATION)["options"]


def _trusted(value):
    """``value`` with every string in it trusted as a template (2.19+), as the script's JSON output is."""
    if trust_as_template is None:
        return value
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


def _as_variable(value) -> str:
    """An option's value as osa.ini (and its OSA_INVENTORY_* variable) spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _ToAnsible(logging.Handler):
    """The library's warnings as Ansible warnings, its notes at ``-vvv``.

    The script logs the same to inventory.log, the notes only with ``--debug``.
    """

    def __init__(self, display):
        super().__init__(logging.INFO)
        self._display = display

    def emit(self, record: logging.LogRecord) -> None:
        message = " ".join(record.getMessage().split())
        if record.levelno >= logging.WARNING:
            self._display.warning(message)
        else:
            self._display.vvv(f"osa_inventory: {message}")


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """The OpenStack-Ansible inventory, generated and stored by the osa_inventory library."""

    NAME = "osa.inventory.storage"

    def verify_file(self, path):
        """Only regular files named ``*.osa.yml`` / ``*.osa.yaml``: other YAML files belong to other plugins."""
        return str(path).endswith(SUFFIXES) and os.path.isfile(path) and super().verify_file(path)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        written = self._read_config_data(path)
        if api is None:
            raise AnsibleParserError(
                f"{path}: the osa_inventory library is not importable by Ansible's Python ({MISSING_LIBRARY}); "
                "install it into that Python or put its lib/ folder on PYTHONPATH (docs/ansible.md)")
        # Ansible ignores keys it does not know: a misspelt option would silently leave osa.ini's value.
        for key in written:
            if key not in self._options:
                raise AnsibleParserError(
                    f"{path}: unknown option {key}{closest(str(key), self._options)}; the options are listed by "
                    f"ansible-doc -t inventory {self.NAME}")
        environ, passed = self._environ()
        where = {"osa_ini": self.get_option("osa_ini"), "config_dir": self.get_option("config_dir"),
                 "environment": self.get_option("environment"), "environ": environ}
        handler = _ToAnsible(self.display)
        library_log = logging.getLogger("osa_inventory")
        level = library_log.level
        if self.display.verbosity >= 3:
            library_log.setLevel(logging.INFO)
        library_log.addHandler(handler)
        try:
            # Storage plugin code runs in here: nothing it prints may reach the --list Ansible prints later.
            with stdout_diverted():
                text = self._inventory_text(path, cache, where)
        except api.InventoryError as exc:
            message = str(exc)
            for variable, name in passed.items():  # named as the user wrote it, not as it was passed on
                message = message.replace(f"environment variable {variable}", f"option {name} of {path}")
            raise AnsibleParserError(message) from None
        finally:
            library_log.removeHandler(handler)
            library_log.setLevel(level)
        self._populate(json.loads(text))

    def _environ(self) -> tuple[dict, dict]:
        """The environment the library reads its settings from, with the osa.ini options set for this source;
        and ``variable: option`` for each variable set from the source file or ansible.cfg."""
        environ, passed = dict(os.environ), {}
        for name, option in _OPTIONS.items():
            variables = [entry.get("name", "") for entry in option.get("env") or []]
            value = self.get_option(name)
            if value is not None and variables and variables[0].startswith(PASSED_PREFIX):
                environ[variables[0]] = _as_variable(value)
                if os.environ.get(variables[0]) != environ[variables[0]]:
                    passed[variables[0]] = name
        return environ, passed

    def _inventory_text(self, path: str, cache: bool, where: dict) -> str:
        """The inventory as the script prints it: from the cache when provably current, else a refresh."""
        use_cache = bool(self.get_option("cache"))
        key = self.get_cache_key(path)
        inputs = None
        if use_cache:
            # Before the refresh: a config changed while it runs then shows as changed next time.
            with contextlib.suppress(api.InventoryError, OSError):
                inputs = api.inputs_digest(**where)
        if use_cache and cache and inputs is not None:
            entry = self._cache.get(key)
            if isinstance(entry, dict) and entry.get("inputs") == inputs and self._stored_is(entry.get("text"), where):
                self.display.vvv(f"{self.NAME}: {path}: {CACHE_USED}")
                return entry["text"]
        refreshed = api.refresh(**where, command=f"{COMMAND} ({os.path.abspath(path)})")
        self.display.vvv(f"{self.NAME}: {path}: generated, " + ("stored as a new version" if refreshed.changed
                                                                 else "the same as stored"))
        if inputs is not None:
            self._cache[key] = {"inputs": inputs, "text": refreshed.text}
        return refreshed.text

    @staticmethod
    def _stored_is(text, where: dict) -> bool:
        """Whether the backend stores exactly ``text`` now: then a run would give ``text`` (it stores its result)."""
        if not isinstance(text, str):
            return False
        try:
            with api.open_inventory(where["osa_ini"], where["config_dir"], environ=where["environ"]) as stored:
                return json.dumps(stored.to_ansible(), sort_keys=True) == text
        except api.InventoryError:  # nothing stored, or the store failed: a refresh says which
            return False

    def _populate(self, data: dict) -> None:
        """Add the script's output to the inventory as ansible-core's script plugin adds it, then construct."""
        hostvars = data.get("_meta", {}).get("hostvars", {})
        hosts: dict[str, None] = {}  # every host of a group, once, in order
        for name, group in data.items():
            if name == "_meta":
                continue
            self.inventory.add_group(name)
            for host in group.get("hosts", []):
                hosts[host] = None
                self.inventory.add_host(host, group=name)
            for key, value in group.get("vars", {}).items():
                self.inventory.set_variable(name, key, _trusted(value))
            for child in group.get("children", []):
                self.inventory.add_group(child)
                self.inventory.add_child(name, child)
        strict = self.get_option("strict")
        for host in hosts:
            for key, value in hostvars.get(host, {}).items():
                self.inventory.set_variable(host, key, _trusted(value))
        for host in hosts:
            entry = self.inventory.get_host(host)
            variables = combine_vars(get_group_vars(entry.get_groups()), entry.get_vars())
            self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)
