# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of the ``aistack.platform.qdrant_collection`` module.

- ``common``: constants and the exceptions the module turns into ``fail_json``.
- ``desired``: the desired configuration from the module parameters (validated, normalised).
- ``actual``: the collection's effective configuration as read from Qdrant.
- ``compare``: differences (immutable / mutable) and the predicted configuration.
- ``plan``: what the task does (keep, create, update, recreate, delete).
- ``apply``: the qdrant-client calls that carry a plan out.
- ``manage``: the whole task, returning the module result.

Nothing here imports ``ansible.module_utils.basic`` (it patches ``sys.intern`` in the
importing process), so tests and other tools can import these files directly.
"""
