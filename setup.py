"""prepaid: prepaid billing for premium telephone services, as a SIP B2BUA on Twisted."""

from setuptools import find_packages, setup

setup(
    name="prepaid",
    version="0.1.0",
    description="Prepaid billing for premium telephone services: a SIP B2BUA on Twisted",
    python_requires=">=3.11",
    # demo/ is the `prepaid demo` command's scripted call and phones: shipped, but outside b2bua/'s import path
    packages=find_packages(include=["b2bua", "b2bua.*", "billing", "billing.*",
                                    "media", "media.*", "webhook", "webhook.*", "demo", "demo.*"]),
    include_package_data=True,
    package_data={"media": ["prompts/*/*.wav"], "webhook": ["portal/static/*", "templates/*"], "billing": ["migrations/*.py", "migrations/*.mako", "migrations/versions/*.py", "alembic.ini"]},
    install_requires=[
        "twisted[tls]>=23.10",
        "sqlalchemy>=2.0.20",
        "alembic>=1.12",
        "pyopenssl>=23.2",
        "cryptography>=41",
        "service_identity>=23.1",
        "treq>=23.11",
        "pydub>=0.25.1",
        "phonenumbers>=8.13",
        "psycopg[binary]>=3.1.12",
    ],
    extras_require={
        # `prepaid demo`: its phones find the prompts in what they heard by cross-correlation
        "demo": [
            "numpy>=1.26",
        ],
        # the tests run the demo's phones too (end to end), and measure prompts and tones with numpy
        "test": [
            "pytest>=7.4",
            "hypothesis>=6.90",
            "schemathesis>=3.25",
            "pytest-timeout>=2.2",
            # the suite runs on two workers (tox.ini's addopts: -n 2 --dist loadscope --no-loadscope-reorder)
            "pytest-xdist>=3.6",
            "numpy>=1.26",
            "selenium>=4.15",
        ],
        "bench": [
            "sippy>=1.2",
        ],
    },
    entry_points={"console_scripts": ["prepaid = b2bua.node.cli:main"]},
)
