from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentsConfig(AppConfig):
    name = "embudo.segments"
    label = "segments"
    verbose_name = _("Segments")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from embudo.accounts.roles import ADMIN, MARKETING, SALES_MANAGER, sync_role_groups
        from embudo.crm import actions as crm_actions
        from embudo.crm import importing
        from embudo.segments import actions
        from embudo.tracking import actions as tracking_actions
        from embudo.web.navigation import register

        # Roles get this app's permissions once its tables exist.
        post_migrate.connect(sync_role_groups, sender=self)
        register("segments:list", _("Segments"), order=50, roles={ADMIN, MARKETING, SALES_MANAGER})
        # A contact's stored persona follows its fields, stage and behaviour.
        crm_actions.AFTER_CONTACT_CHANGE.append(actions.contacts_changed)
        crm_actions.AFTER_STAGE_CHANGE.append(actions.stage_changed)
        crm_actions.BEFORE_MERGE.append(actions.before_merge)
        tracking_actions.AFTER_EVENTS.append(actions.contacts_changed)
        importing.AFTER_IMPORT.append(actions.import_finished)
