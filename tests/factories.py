import factory
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from members.identifiers import random_code
from members.models import Member, Program


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program

    slug = factory.Sequence(lambda n: f"program-{n}")
    name = factory.Sequence(lambda n: f"Program {n}")
    currency = "EUR"
    timezone = "Europe/Prague"


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    program = factory.SubFactory(ProgramFactory)
    external_id = factory.Sequence(lambda n: f"CUST-{n}")
    card = factory.Sequence(lambda n: f"{400000000000 + n}")
    email = factory.Sequence(lambda n: f"member{n}@example.com")
    first_name = "Jana"
    last_name = factory.Sequence(lambda n: f"Novak{n}")
    enrolled_at = factory.LazyFunction(timezone.now)
    referral_code = factory.LazyFunction(lambda: random_code(8))


class StaffFactory(factory.django.DjangoModelFactory):
    """A manager with the permissions the manager API and admin need."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"manager{n}")
    is_staff = True

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        codenames = (
            extracted
            if extracted is not None
            else [
                "view_member",
                "change_member",
                "view_program",
                "adjust_points",
                "view_entry",
                "view_apikey",
            ]
        )
        self.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
