# The per-domain rate limit of sends counts deliveries by recipient domain.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('automation', '0002_consent'),
    ]

    operations = [
        migrations.AddField(
            model_name='delivery',
            name='domain',
            field=models.CharField(blank=True, default='', max_length=253),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['domain', 'claimed_at'], name='delivery_domain_claimed'),
        ),
    ]
