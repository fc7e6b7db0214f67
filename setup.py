from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="tf_gru4rec",
    version="0.1.0",
    description="GRU4Rec session-based recommendations in TensorFlow/Keras: faithful, fast, servable.",
    long_description=long_description,
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tf_gru4rec", "tf_gru4rec.*"]),
    # The published parameter sets (`--param-file rsc15_xe_shared_best`): data, not modules.
    package_data={"tf_gru4rec": ["training/paramfiles/*.py"]},
    # The `python -m tf_gru4rec.X` commands under shorter names.
    entry_points={"console_scripts": [
        "gru4rec-train=tf_gru4rec.cli.train:train_main",
        "gru4rec-evaluate=tf_gru4rec.cli.evaluate:evaluate_main",
        "gru4rec-export=tf_gru4rec.cli.export:export_main",
        "gru4rec-daily=tf_gru4rec.cli.daily:main",
        "gru4rec-tune=tf_gru4rec.cli.tune:main",
        "gru4rec-preprocess=tf_gru4rec.cli.preprocess:main",
    ]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.20,<3",
        "keras>=3.10",
        "numpy>=1.26",
        "pandas>=2.1",
        "pyarrow>=14",
        "tensorboard>=2.20",
        "tensorflow-datasets>=4.9.6",
        "importlib_resources>=6",
        "tensorflow-serving-api>=2.20",
        "grpcio>=1.60",
    ],
    extras_require={
        # The tune tests run in CI, so the test extra carries optuna too.
        "test": ["pytest>=8", "pytest-xdist>=3.5", "nbclient>=0.10", "nbformat>=5.9", "ipykernel>=6.29", "matplotlib>=3.8",
                 "optuna>=3.5", "mkdocs>=1.6", "mkdocstrings[python]>=0.29"],
        "tune": ["optuna>=3.5"],
    },
)
