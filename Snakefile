from snakemake.utils import min_version

min_version("9.0")


# The embedded demo, unless the command line names config files: those replace it
# (Snakemake would otherwise merge them into this one and run the demo too).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/quality.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/bins.smk"
include: "workflow/rules/variation.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_outputs,
        "results/report/summary.html",
