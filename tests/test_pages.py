"""The CRM pages through Django's test client: who sees and changes what; what bad input does."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from embudo.crm import actions as crm
from embudo.crm.models import Activity, Contact, LifecycleTransition
from tests.factories import PASSWORD, make_company, make_contact, make_user

pytestmark = pytest.mark.django_db


def login(client: Client, user: Any) -> Any:
    client.force_login(user)  # the login form has its own tests below
    return user


# -- access ---------------------------------------------------------------------------------------


def test_pages_send_anonymous_visitors_to_the_login_form(client: Client) -> None:
    contact = make_contact()

    for url in ("/", "/contacts/", f"/contacts/{contact.pk}/", "/companies/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    "url",
    ["/analytics/", "/deals/", "/deals/plan/", "/leads/", "/scoring/", "/scoring/predictive/"],
)
def test_other_apps_pages_send_anonymous_visitors_to_the_login_form(
    client: Client, url: str
) -> None:
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_login_form_logs_a_user_in_and_lands_on_the_contacts_list(client: Client) -> None:
    user = make_user("marketing", first_name="Marta", last_name="Ruiz")

    response = client.post(
        "/login/", {"username": user.username, "password": PASSWORD}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/contacts/"
    assert "Marta Ruiz" in response.text
    assert "Marketing" in response.text


def test_login_with_a_wrong_password_shows_an_error(client: Client) -> None:
    user = make_user("sales")

    response = client.post("/login/", {"username": user.username, "password": "wrong"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.text
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post_that_ends_the_session(client: Client) -> None:
    login(client, make_user("sales"))

    client.post("/logout/")

    assert client.get("/contacts/").status_code == 302


def test_sales_rep_gets_404_on_another_reps_contact(client: Client) -> None:
    rep, other_rep = make_user("sales"), make_user("sales")
    theirs = make_contact(owner_id=other_rep.pk, first_name="Hidden")
    login(client, rep)

    assert client.get(f"/contacts/{theirs.pk}/").status_code == 404
    assert "Hidden" not in client.get("/contacts/").text


def test_sales_rep_sees_own_and_unassigned_contacts(client: Client) -> None:
    rep, other_rep = make_user("sales"), make_user("sales")
    mine = make_contact(owner_id=rep.pk, last_name="Mine")
    free = make_contact(last_name="Unowned")
    make_contact(owner_id=other_rep.pk, last_name="Elsewhere")
    login(client, rep)

    listing = client.get("/contacts/").text

    assert "Mine" in listing and "Unowned" in listing and "Elsewhere" not in listing
    assert client.get(f"/contacts/{mine.pk}/").status_code == 200
    assert client.get(f"/contacts/{free.pk}/").status_code == 200


@pytest.mark.parametrize("role", ["marketing", "sales_manager", "admin"])
def test_roles_that_see_every_contact_open_a_reps_contact(client: Client, role: str) -> None:
    rep = make_user("sales")
    contact = make_contact(owner_id=rep.pk, first_name="Owned", last_name="ByRep")
    login(client, make_user(role))

    response = client.get(f"/contacts/{contact.pk}/")

    assert response.status_code == 200
    assert "Owned ByRep" in response.text


def test_sales_rep_cannot_change_the_stage_of_another_reps_contact(client: Client) -> None:
    rep, other_rep = make_user("sales"), make_user("sales")
    theirs = make_contact(owner_id=other_rep.pk, lifecycle_stage="lead")
    login(client, rep)

    response = client.post(f"/contacts/{theirs.pk}/stage/", {"lifecycle_stage": "sql"})

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.lifecycle_stage == "lead"


def test_role_without_change_permission_gets_403_and_no_form(client: Client) -> None:
    # An admin narrows the sales role in the Django admin: reps may look, not change contacts.
    Group.objects.get(name="sales").permissions.remove(
        Permission.objects.get(codename="change_contact")
    )
    rep = login(client, make_user("sales"))
    contact = make_contact(owner_id=rep.pk, lifecycle_stage="lead")

    page = client.get(f"/contacts/{contact.pk}/").text
    response = client.post(f"/contacts/{contact.pk}/stage/", {"lifecycle_stage": "mql"})

    assert "Change stage" not in page
    assert response.status_code == 403
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "lead"
    assert contact.transitions.count() == 1


def test_role_without_activity_permission_gets_403(client: Client) -> None:
    Group.objects.get(name="marketing").permissions.remove(
        Permission.objects.get(codename="add_activity")
    )
    login(client, make_user("marketing"))
    contact = make_contact()

    page = client.get(f"/contacts/{contact.pk}/").text
    response = client.post(
        f"/contacts/{contact.pk}/activities/", {"kind": "note", "subject": "Hello"}
    )

    assert "Log an activity" not in page
    assert response.status_code == 403
    assert not Activity.objects.exists()


def test_user_without_a_role_is_refused_every_page(client: Client) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("norole", password=PASSWORD)
    assert client.login(username="norole", password=PASSWORD)

    assert client.get("/contacts/").status_code == 403
    assert client.get("/companies/").status_code == 403


def test_admin_site_is_for_admins_only(client: Client) -> None:
    login(client, make_user("sales_manager"))
    assert client.get("/admin/").status_code == 302

    client.logout()
    login(client, make_user("admin"))
    admin_page = client.get("/admin/")
    assert admin_page.status_code == 200
    assert client.get("/admin/crm/contact/").status_code == 200
    assert client.get("/admin/accounts/apikey/").status_code == 200


# -- contacts list --------------------------------------------------------------------------------


def test_contacts_list_shows_the_columns_a_user_works_with(client: Client) -> None:
    owner = make_user("sales", first_name="Sam", last_name="Seller")
    company = make_company(name="Acme Robotics")
    make_contact(
        first_name="Ana",
        last_name="García",
        email="ana@acme.example",
        company_id=company.pk,
        owner_id=owner.pk,
        lifecycle_stage="mql",
        lead_status="attempting",
    )
    login(client, make_user("marketing"))

    text = client.get("/contacts/").text

    for shown in (
        "Ana García",
        "ana@acme.example",
        "Acme Robotics",
        "MQL",
        "Attempting",
        "Sam Seller",
    ):
        assert shown in text


def test_search_narrows_the_list(client: Client) -> None:
    make_contact(first_name="Lucía", last_name="Fernández", email="lucia@example.com")
    make_contact(first_name="Bruno", last_name="Díaz", email="bruno@example.com")
    login(client, make_user("marketing"))

    text = client.get("/contacts/", {"q": "bruno"}).text

    assert "Bruno Díaz" in text and "Lucía" not in text
    assert "1 contact" in text


def test_a_search_with_more_than_a_page_of_matches_says_so(client: Client) -> None:
    for n in range(30):
        make_contact(first_name="Marta", last_name=f"Many{n}")
    make_contact(first_name="Other")
    login(client, make_user("marketing"))

    text = client.get("/contacts/", {"q": "marta"}).text
    everyone = client.get("/contacts/").text

    assert "More than 25 contacts" in text
    assert "31 contacts" in everyone


def test_stage_and_owner_filters_combine(client: Client) -> None:
    me = login(client, make_user("sales_manager"))
    make_contact(last_name="MineMql", owner_id=me.pk, lifecycle_stage="mql")
    make_contact(last_name="MineLead", owner_id=me.pk, lifecycle_stage="lead")
    make_contact(last_name="NobodysMql", lifecycle_stage="mql")

    mine = client.get("/contacts/", {"stage": "mql", "owner": "me"}).text
    unassigned = client.get("/contacts/", {"owner": "none"}).text

    assert "MineMql" in mine and "MineLead" not in mine and "NobodysMql" not in mine
    assert "NobodysMql" in unassigned and "MineMql" not in unassigned


def test_malformed_filters_are_ignored_not_an_error(client: Client) -> None:
    make_contact(last_name="StillListed")
    login(client, make_user("marketing"))

    response = client.get("/contacts/", {"stage": "nonsense", "after": "abc", "company": "x"})

    assert response.status_code == 200
    assert "StillListed" in response.text


def test_pages_walk_through_every_contact_once(client: Client) -> None:
    created = [make_contact(last_name=f"Paged{n:02d}") for n in range(60)]
    login(client, make_user("marketing"))

    seen: list[str] = []
    url = "/contacts/"
    for _ in range(5):
        response = client.get(url)
        page = response.context["page"]
        seen.extend(c.last_name for c in page.contacts)
        if not response.context["older_url"]:
            break
        url = "/contacts/" + response.context["older_url"]

    assert sorted(seen) == sorted(c.last_name for c in created)
    assert len(seen) == 60
    # And back up: the newer link of the last page lands on the page before it.
    back = client.get("/contacts/" + response.context["newer_url"]).context["page"]
    assert [c.last_name for c in back.contacts] == seen[25:50]


def test_a_sales_rep_pages_through_own_and_unassigned_contacts_only(client: Client) -> None:
    rep, other = make_user("sales"), make_user("sales")
    visible = set()
    for n in range(60):
        owner = (rep.pk, None, other.pk)[n % 3]
        contact = make_contact(last_name=f"Rep{n:02d}", owner_id=owner)
        if owner != other.pk:
            visible.add(contact.last_name)
    login(client, rep)

    pages: list[list[str]] = []
    url = "/contacts/"
    while url:
        response = client.get(url)
        pages.append([c.last_name for c in response.context["page"].contacts])
        older = response.context["older_url"]
        url = "/contacts/" + older if older else ""

    assert [len(p) for p in pages] == [25, 15]
    assert {name for p in pages for name in p} == visible
    newer = client.get("/contacts/" + response.context["newer_url"]).context["page"]
    assert [c.last_name for c in newer.contacts] == pages[0]


def test_contacts_list_query_count_does_not_grow_with_the_page(
    client: Client, django_assert_max_num_queries: Any
) -> None:
    company = make_company()
    owner = make_user("sales")
    for _ in range(30):
        make_contact(company_id=company.pk, owner_id=owner.pk)
    login(client, make_user("marketing"))

    with django_assert_max_num_queries(8):
        client.get("/contacts/")


# -- contact page ---------------------------------------------------------------------------------


def test_contact_page_shows_properties_timeline_and_history(client: Client) -> None:
    crm.define_property("contact", "Plan", "choice", choices=["basic", "pro"])
    crm.define_property("contact", "Seats", "number")
    crm.define_property("contact", "Newsletter", "boolean")
    company = make_company(name="Globex")
    contact = make_contact(
        first_name="Irene",
        last_name="Soto",
        company_id=company.pk,
        lifecycle_stage="lead",
        properties={"plan": "pro", "seats": 1200, "newsletter": True},
    )
    crm.set_lifecycle_stage(contact, "mql", cause="rule")
    crm.log_activity(contact, {"kind": "call", "subject": "Discovery call", "body": "Budget ok"})
    login(client, make_user("marketing"))

    text = client.get(f"/contacts/{contact.pk}/").text

    assert "Irene Soto" in text and f"/companies/{company.pk}/" in text
    assert "Plan" in text and "pro" in text and "1,200" in text and "Yes" in text
    assert "Discovery call" in text and "Budget ok" in text
    assert "Moved from Lead to MQL" in text
    assert "Rule" in text


def test_changing_the_stage_records_a_manual_move_by_the_user(client: Client) -> None:
    user = login(client, make_user("sales_manager"))
    contact = make_contact(lifecycle_stage="mql")

    response = client.post(
        f"/contacts/{contact.pk}/stage/",
        {"lifecycle_stage": "sql", "note": "Budget confirmed"},
        follow=True,
    )

    assert "Lifecycle stage changed to SQL." in response.text
    move = contact.transitions.order_by("-id").first()
    assert move is not None
    assert (move.from_stage, move.to_stage, move.cause, move.actor_id, move.note) == (
        "mql",
        "sql",
        "manual",
        user.pk,
        "Budget confirmed",
    )


def test_an_unknown_stage_shows_an_error_and_changes_nothing(client: Client) -> None:
    login(client, make_user("admin"))
    contact = make_contact(lifecycle_stage="lead")

    response = client.post(f"/contacts/{contact.pk}/stage/", {"lifecycle_stage": "promoted"})

    assert response.status_code == 400
    assert "Select a valid choice" in response.text
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "lead"
    assert LifecycleTransition.objects.filter(contact=contact).count() == 1


def test_logging_a_task_with_a_due_date_puts_it_on_the_timeline(client: Client) -> None:
    user = login(client, make_user("sales"))
    contact = make_contact(owner_id=user.pk)

    response = client.post(
        f"/contacts/{contact.pk}/activities/",
        {"kind": "task", "subject": "Send proposal", "due_date": "2026-03-10"},
        follow=True,
    )

    activity = Activity.objects.get(contact=contact)
    assert (activity.kind, activity.subject, activity.actor_id) == (
        "task",
        "Send proposal",
        user.pk,
    )
    assert activity.due_at is not None and activity.due_at.date().isoformat() == "2026-03-10"
    assert "Send proposal" in response.text and "Task logged." in response.text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "note", "subject": "Hi", "due_date": "2026-03-10"}, "Only a task has a due date"),
        ({"kind": "task", "subject": "Call", "due_date": "31/31/2026"}, "Enter a valid date"),
        ({"kind": "fax", "subject": "Hi"}, "Select a valid choice"),
        ({"kind": "note"}, "Write a subject or some details"),
    ],
)
def test_bad_activity_input_shows_an_error_and_logs_nothing(
    client: Client, data: dict[str, str], message: str
) -> None:
    login(client, make_user("marketing"))
    contact = make_contact()

    response = client.post(f"/contacts/{contact.pk}/activities/", data)

    assert response.status_code == 400
    assert message in response.text
    assert not Activity.objects.exists()


# -- companies ------------------------------------------------------------------------------------


def test_company_page_lists_only_the_contacts_the_user_may_see(client: Client) -> None:
    rep, other = make_user("sales"), make_user("sales")
    company = make_company(name="Initech", industry="Software")
    make_contact(company_id=company.pk, owner_id=rep.pk, last_name="Visible")
    make_contact(company_id=company.pk, owner_id=other.pk, last_name="Invisible")
    login(client, rep)

    listing = client.get("/companies/").text
    page = client.get(f"/companies/{company.pk}/").text

    assert "Initech" in listing
    assert "Visible" in page and "Invisible" not in page
    assert "Software" in page


def test_company_search(client: Client) -> None:
    make_company(name="Umbrella", domain="umbrella.example")
    make_company(name="Vandelay", domain="vandelay.example")
    login(client, make_user("marketing"))

    text = client.get("/companies/", {"q": "vand"}).text

    assert "Vandelay" in text and "Umbrella" not in text


# -- language -------------------------------------------------------------------------------------


def test_switching_to_spanish_translates_the_contacts_page(client: Client) -> None:
    make_contact(lifecycle_stage="customer", lead_status="connected")
    login(client, make_user("marketing"))

    response = client.post("/i18n/setlang/", {"language": "es", "next": "/contacts/"}, follow=True)

    text = response.text
    assert '<html lang="es">' in text
    assert "Contactos" in text and "Empresas" in text
    assert "Cliente" in text  # the stage label
    assert "Conectado" in text  # the lead status label
    assert "Cerrar sesión" in text
    Contact.objects.all()  # the data itself is untouched by the language
