"""The local emulator: moto server, keeping the Route 53 rules for weighted record
sets that evac relies on and moto does not keep (AWS: ChangeResourceRecordSets):

- A DELETE names one set by name, type and set identifier and must give it as it
  is now (its weight and TTL are compared); otherwise the whole batch is refused
  with InvalidChangeBatch and nothing changes. Moto deletes every set with that
  set identifier in the zone, whatever the name, and compares nothing.
- A CREATE is refused only when a set with that name, type and set identifier
  exists. Moto refuses a CREATE identical to any earlier change of the zone.

Everything else is moto's own. Started as `python moto_server.py ARGS...` with
moto_server's arguments.
"""

import copy
import sys

from moto.route53 import models
from moto.route53.exceptions import Route53ClientError
from moto.server import main

_original = models.Route53Backend.change_resource_record_sets


def _key(name, kind, set_identifier):
    return (str(name).strip(".").lower(), str(kind), str(set_identifier))


def _refused(message):
    return Route53ClientError("InvalidChangeBatch", f"[{message}]")


def change_resource_record_sets(self, zoneid, change_list):
    zone = self.get_hosted_zone(zoneid)
    weighted = [
        c for c in change_list
        if c.get("Action") in ("DELETE", "CREATE") and "SetIdentifier" in c.get("ResourceRecordSet", {})
    ]
    if not weighted:
        return _original(self, zoneid, change_list)
    # The sets as they stand, then as each change of the batch leaves them: the
    # whole batch is checked before anything changes.
    sets = {_key(r.name, r.type, r.set_identifier): r for r in zone.rrsets}
    present = set(sets)
    for change in change_list:
        rrset = change.get("ResourceRecordSet", {})
        if "SetIdentifier" not in rrset:
            continue
        key = _key(rrset.get("Name"), rrset.get("Type"), rrset.get("SetIdentifier"))
        action = change.get("Action")
        if action == "DELETE":
            now = sets.get(key) if key in present else None
            if now is None or str(now.weight) != str(rrset.get("Weight")) or str(now.ttl) != str(rrset.get("TTL")):
                raise _refused(
                    f"Tried to delete resource record set [name='{rrset.get('Name')}', type='{rrset.get('Type')}', "
                    f"set-identifier='{rrset.get('SetIdentifier')}'] but the values provided do not match the current values"
                )
            present.discard(key)
        elif action == "CREATE":
            if key in present:
                raise _refused(
                    f"Tried to create resource record set [name='{rrset.get('Name')}', type='{rrset.get('Type')}', "
                    f"set-identifier='{rrset.get('SetIdentifier')}'] but it already exists"
                )
            present.add(key)
        elif action == "UPSERT":
            present.add(key)
    # Applied in order: a weighted DELETE removes that one set; a weighted CREATE,
    # checked above, is moto's UPSERT of it; the rest is moto's.
    for change in change_list:
        rrset = change.get("ResourceRecordSet", {})
        if "SetIdentifier" in rrset and change.get("Action") == "DELETE":
            key = _key(rrset.get("Name"), rrset.get("Type"), rrset.get("SetIdentifier"))
            zone.rrsets = [r for r in zone.rrsets if _key(r.name, r.type, r.set_identifier) != key]
            zone.rr_changes.append(copy.deepcopy(change))
        elif "SetIdentifier" in rrset and change.get("Action") == "CREATE":
            _original(self, zoneid, [dict(change, Action="UPSERT")])
        else:
            _original(self, zoneid, [change])


models.Route53Backend.change_resource_record_sets = change_resource_record_sets

if __name__ == "__main__":
    sys.exit(main())
